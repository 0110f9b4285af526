// bind_pad2d.cpp (CUDA): striate._cuda.pad2d_forward / pad2d_backward.
#include "bind.h"
#include "cuda/pad2d.h"

namespace striate {
namespace {

void check_pad(const char* op, index_t planes, index_t H, index_t W, index_t pl, index_t pr,
               index_t pt, index_t pb, int mode) {
  require_cuda(planes >= 1 && H >= 1 && W >= 1,
               std::string(op) + ": planes, H and W must be >= 1");
  for (index_t v : {pl, pr, pt, pb}) require_geometry_cuda(op, "pad", v, 0);
  require_cuda(mode >= 0 && mode <= 3,
               std::string(op) + ": mode must be 0..3 (constant, reflect, replicate, circular)");
}

void pad2d_forward(uintptr_t y, uintptr_t x, const std::string& dtype, index_t planes, index_t H,
                   index_t W, index_t pl, index_t pr, index_t pt, index_t pb, int mode,
                   double value, uintptr_t stream) {
  check_pad("pad2d", planes, H, W, pl, pr, pt, pb, mode);
  dispatch_float_name("pad2d", dtype, [&](auto t) {
    using T = decltype(t);
    pad2d_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), planes, H, W, pl, pr, pt, pb,
                       mode, (T)value, as_stream(stream));
  });
}

void pad2d_backward(uintptr_t dx, uintptr_t dy, const std::string& dtype, index_t planes,
                    index_t H, index_t W, index_t pl, index_t pr, index_t pt, index_t pb,
                    int mode, uintptr_t stream) {
  check_pad("pad2d_backward", planes, H, W, pl, pr, pt, pb, mode);
  dispatch_float_name("pad2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    pad2d_backward_cuda(device_ptr<T>(dx), device_ptr<const T>(dy), planes, H, W, pl, pr, pt, pb,
                        mode, as_stream(stream));
  });
}

}  // namespace

void bind_pad2d(py::module_& m) {
  m.def("pad2d_forward", &pad2d_forward);
  m.def("pad2d_backward", &pad2d_backward);
}

}  // namespace striate
