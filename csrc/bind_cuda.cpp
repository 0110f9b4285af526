// bind_cuda.cpp: the striate._cuda module. The runtime is linked
// statically, so importing this module needs no driver: device_count() is 0
// on a machine without a GPU. Each op family registers its bindings from
// csrc/cuda/bind_<family>.cpp.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include "cuda/bind.h"

namespace {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "striate CUDA kernels (cudart linked statically). Use striate.ops.";
  m.def("device_count", &device_count);
  striate::bind_dropout(m);
  striate::bind_conv2d(m);
  striate::bind_pad2d(m);
  striate::bind_pool2d(m);
  striate::bind_unpool2d(m);
  striate::bind_pyramid(m);
  striate::bind_warp(m);
}
