// bind_cuda.cpp: the striate._cuda module. It receives device pointers
// (integers taken from CuPy arrays by striate.ops), the element count, the
// dtype name and CuPy's current stream, and launches the kernels. The
// runtime is linked statically, so importing this module needs no driver:
// device_count() is 0 on a machine without a GPU.
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <string>

#include "common/philox.h"
#include "cuda/dropout.h"

namespace py = pybind11;
using striate::index_t;

namespace {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error
    return 0;
  }
  return n;
}

template <typename T>
T* as_ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

void require_float_dtype(const std::string& dtype) {
  if (dtype != "float32" && dtype != "float64")
    throw py::type_error("expected float32 or float64, got " + dtype);
}

void dropout_forward(uintptr_t y, uintptr_t mask, uintptr_t x, index_t count,
                     const std::string& dtype, uint64_t seed, uint64_t offset, double p,
                     double scale, uintptr_t stream) {
  require_float_dtype(dtype);
  if (!(p >= 0.0 && p <= 1.0)) throw py::value_error("dropout: p must be in [0, 1]");
  const uint64_t threshold = striate::dropout_threshold(p);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype == "float32")
    striate::dropout_forward_cuda(as_ptr<float>(y), as_ptr<uint8_t>(mask), as_ptr<const float>(x),
                                  count, seed, offset, threshold, (float)scale, s);
  else
    striate::dropout_forward_cuda(as_ptr<double>(y), as_ptr<uint8_t>(mask),
                                  as_ptr<const double>(x), count, seed, offset, threshold, scale,
                                  s);
}

void dropout_backward(uintptr_t dx, uintptr_t dy, uintptr_t mask, index_t count,
                      const std::string& dtype, double scale, uintptr_t stream) {
  require_float_dtype(dtype);
  auto s = reinterpret_cast<cudaStream_t>(stream);
  if (dtype == "float32")
    striate::dropout_backward_cuda(as_ptr<float>(dx), as_ptr<const float>(dy),
                                   as_ptr<const uint8_t>(mask), count, (float)scale, s);
  else
    striate::dropout_backward_cuda(as_ptr<double>(dx), as_ptr<const double>(dy),
                                   as_ptr<const uint8_t>(mask), count, scale, s);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "striate CUDA kernels (cudart linked statically). Use striate.ops.";
  m.def("device_count", &device_count);
  m.def("dropout_forward", &dropout_forward);
  m.def("dropout_backward", &dropout_backward);
}
