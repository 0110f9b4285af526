// bind.h (CUDA): helpers shared by the striate._cuda binding files and the
// per-family registration functions that bind_cuda.cpp calls. Bindings
// receive device pointers as integers (taken from CuPy arrays by
// striate.ops), sizes, a dtype name and CuPy's current stream; they check
// the arguments, then call the launchers. No arithmetic here.
#pragma once
#include <cuda_runtime.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "common/macros.h"
#include "common/shape.h"

namespace striate {
namespace py = pybind11;

template <typename T>
T* device_ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

inline cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Calls f(T{}) with T = float or double according to the dtype name.
template <typename F>
auto dispatch_float_name(const char* op, const std::string& dtype, F f) {
  if (dtype == "float32") return f(float{});
  if (dtype == "float64") return f(double{});
  throw py::type_error(std::string(op) + ": expected float32 or float64, got " + dtype);
}

inline void require_cuda(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

// A kernel size, stride, padding or dilation in [minimum, kMaxGeometryArgument]
// (common/shape.h), so that no index formed from it overflows.
inline void require_geometry_cuda(const std::string& op, const char* name, index_t v,
                                  index_t minimum) {
  require_cuda(geometry_argument_ok(v, minimum),
               op + ": " + name + " must be in [" + std::to_string(minimum) + ", " +
                   std::to_string(kMaxGeometryArgument) + "], got " + std::to_string(v));
}

// One registration function per op family (csrc/cuda/bind_<family>.cpp).
void bind_dropout(py::module_& m);
void bind_pad2d(py::module_& m);
void bind_conv2d(py::module_& m);
void bind_pool2d(py::module_& m);
void bind_unpool2d(py::module_& m);
void bind_pyramid(py::module_& m);
void bind_warp(py::module_& m);

}  // namespace striate
