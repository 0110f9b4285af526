// bind_pyramid.cpp (CUDA): striate._cuda.pyr_down_forward / pyr_down_backward /
// pyr_up_forward / pyr_up_backward, and the host-built adjoint tap lists
// (pyr_down_adjoint_taps / pyr_up_adjoint_taps, common/pyramid_plan.h) that
// striate.ops uploads with CuPy and passes to the backward passes as
// (ptr, src, wt) device pointers per axis.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <tuple>

#include "bind.h"
#include "common/pyramid_plan.h"
#include "common/shape.h"
#include "cuda/pyramid.h"

namespace striate {
namespace {

using TapPointers = std::tuple<uintptr_t, uintptr_t, uintptr_t>;  // ptr, src, wt

PyrTapsDevice taps_device(const TapPointers& t) {
  return {device_ptr<const index_t>(std::get<0>(t)), device_ptr<const index_t>(std::get<1>(t)),
          device_ptr<const double>(std::get<2>(t))};
}

py::tuple taps_arrays(const Taps& t) {
  return py::make_tuple(py::array_t<index_t>((py::ssize_t)t.ptr.size(), t.ptr.data()),
                        py::array_t<index_t>((py::ssize_t)t.src.size(), t.src.data()),
                        py::array_t<double>((py::ssize_t)t.wt.size(), t.wt.data()));
}

void require_plane(const char* op, index_t planes, index_t H, index_t W) {
  require_cuda(planes >= 1 && H >= 1 && W >= 1,
               std::string(op) + ": planes, H and W must be positive, got " +
                   std::to_string(planes) + ", " + std::to_string(H) + ", " + std::to_string(W));
}

void require_up_size(const char* op, index_t H, index_t W, index_t Ho, index_t Wo) {
  require_cuda(pyr_up_size_ok(H, Ho) && pyr_up_size_ok(W, Wo),
               std::string(op) + ": each output side must be 2n, or 2n +- 1 when odd");
}

void pyr_down_forward(uintptr_t y, uintptr_t x, const std::string& dtype, index_t planes,
                      index_t H, index_t W, uintptr_t stream) {
  require_plane("pyr_down", planes, H, W);
  dispatch_float_name("pyr_down", dtype, [&](auto t) {
    using T = decltype(t);
    pyr_down_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), planes, H, W,
                          as_stream(stream));
  });
}

void pyr_down_backward(uintptr_t dx, uintptr_t dy, const std::string& dtype, index_t planes,
                       index_t H, index_t W, const TapPointers& rows, const TapPointers& cols,
                       uintptr_t stream) {
  require_plane("pyr_down_backward", planes, H, W);
  dispatch_float_name("pyr_down_backward", dtype, [&](auto t) {
    using T = decltype(t);
    pyr_down_backward_cuda(device_ptr<T>(dx), device_ptr<const T>(dy), planes, H, W,
                           taps_device(rows), taps_device(cols), as_stream(stream));
  });
}

void pyr_up_forward(uintptr_t y, uintptr_t x, const std::string& dtype, index_t planes, index_t H,
                    index_t W, index_t Ho, index_t Wo, uintptr_t stream) {
  require_plane("pyr_up", planes, H, W);
  require_up_size("pyr_up", H, W, Ho, Wo);
  dispatch_float_name("pyr_up", dtype, [&](auto t) {
    using T = decltype(t);
    pyr_up_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), planes, H, W, Ho, Wo,
                        as_stream(stream));
  });
}

void pyr_up_backward(uintptr_t dx, uintptr_t dy, const std::string& dtype, index_t planes,
                     index_t H, index_t W, index_t Ho, index_t Wo, const TapPointers& rows,
                     const TapPointers& cols, uintptr_t stream) {
  require_plane("pyr_up_backward", planes, H, W);
  require_up_size("pyr_up_backward", H, W, Ho, Wo);
  dispatch_float_name("pyr_up_backward", dtype, [&](auto t) {
    using T = decltype(t);
    pyr_up_backward_cuda(device_ptr<T>(dx), device_ptr<const T>(dy), planes, H, W, Ho, Wo,
                         taps_device(rows), taps_device(cols), as_stream(stream));
  });
}

py::tuple pyr_down_adjoint(index_t n) {
  require_cuda(n >= 1, "pyr_down_adjoint_taps: n must be positive, got " + std::to_string(n));
  return taps_arrays(pyr_down_adjoint_taps(n));
}

py::tuple pyr_up_adjoint(index_t n, index_t m, bool vertical) {
  require_cuda(pyr_up_size_ok(n, m), "pyr_up_adjoint_taps: m must be 2n, or 2n +- 1 when odd");
  return taps_arrays(pyr_up_adjoint_taps(n, m, vertical));
}

}  // namespace

void bind_pyramid(py::module_& m) {
  m.def("pyr_down_forward", &pyr_down_forward);
  m.def("pyr_down_backward", &pyr_down_backward);
  m.def("pyr_up_forward", &pyr_up_forward);
  m.def("pyr_up_backward", &pyr_up_backward);
  m.def("pyr_down_adjoint_taps", &pyr_down_adjoint,
        "(ptr, src, wt) numpy arrays of pyr_down's adjoint along a side of n inputs");
  m.def("pyr_up_adjoint_taps", &pyr_up_adjoint,
        "(ptr, src, wt) numpy arrays of pyr_up's adjoint from m outputs to n inputs");
}

}  // namespace striate
