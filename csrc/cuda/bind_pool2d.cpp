// bind_pool2d.cpp (CUDA): striate._cuda max / average pooling. The
// geometry comes in as (H, W) and (kernel, stride, padding, dilation)
// pairs; the output extent comes from shape.h, as in the CPU bindings, so
// it agrees with the arrays striate.ops allocated.
#include <pybind11/stl.h>

#include "bind.h"
#include "common/shape.h"
#include "cuda/pool2d.h"

namespace striate {
namespace {

using Pair = std::pair<index_t, index_t>;

Pool2dGeometry pool_geometry(const char* op, index_t planes, Pair in_hw, Pair k, Pair s, Pair p,
                             Pair d, bool ceil_mode) {
  const std::string name(op);
  require_cuda(planes >= 1 && in_hw.first >= 1 && in_hw.second >= 1,
               name + ": planes, H and W must be >= 1");
  for (index_t v : {k.first, k.second}) require_geometry_cuda(name, "kernel_size", v, 1);
  for (index_t v : {s.first, s.second}) require_geometry_cuda(name, "stride", v, 1);
  for (index_t v : {d.first, d.second}) require_geometry_cuda(name, "dilation", v, 1);
  for (index_t v : {p.first, p.second}) require_geometry_cuda(name, "padding", v, 0);
  require_cuda(2 * p.first <= k.first && 2 * p.second <= k.second,
               name + ": padding must be at most half the kernel size");
  Pool2dGeometry g;
  g.H = in_hw.first; g.W = in_hw.second;
  g.kh = k.first; g.kw = k.second; g.sh = s.first; g.sw = s.second;
  g.ph = p.first; g.pw = p.second; g.dh = d.first; g.dw = d.second;
  g.Ho = pool_output_size(g.H, g.kh, g.sh, g.ph, g.dh, ceil_mode);
  g.Wo = pool_output_size(g.W, g.kw, g.sw, g.pw, g.dw, ceil_mode);
  require_cuda(g.Ho != kSizeOverflow && g.Wo != kSizeOverflow,
               name + ": the output size overflows int64 (arguments too large)");
  require_cuda(g.Ho >= 1 && g.Wo >= 1, name + ": the output would be empty");
  return g;
}

void max_pool2d_forward(uintptr_t y, uintptr_t indices, uintptr_t x, const std::string& dtype,
                        index_t planes, Pair in_hw, Pair k, Pair s, Pair p, Pair d,
                        bool ceil_mode, uintptr_t stream) {
  const Pool2dGeometry g = pool_geometry("max_pool2d", planes, in_hw, k, s, p, d, ceil_mode);
  dispatch_float_name("max_pool2d", dtype, [&](auto t) {
    using T = decltype(t);
    max_pool2d_forward_cuda(device_ptr<T>(y), device_ptr<int64_t>(indices),
                            device_ptr<const T>(x), planes, g, as_stream(stream));
  });
}

// flags: two int64 words (out of plane, out of window), see cuda/pool2d.h.
void max_pool2d_backward(uintptr_t dx, uintptr_t flags, uintptr_t dy, uintptr_t indices,
                         const std::string& dtype, index_t planes, Pair in_hw, Pair k, Pair s,
                         Pair p, Pair d, bool ceil_mode, uintptr_t stream) {
  const Pool2dGeometry g =
      pool_geometry("max_pool2d_backward", planes, in_hw, k, s, p, d, ceil_mode);
  dispatch_float_name("max_pool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    max_pool2d_backward_cuda(device_ptr<T>(dx), device_ptr<int64_t>(flags),
                             device_ptr<const T>(dy), device_ptr<const int64_t>(indices), planes,
                             g, as_stream(stream));
  });
}

// Indices from any geometry: only the extents (H, W) and (Ho, Wo) matter.
void max_pool2d_backward_ordered(uintptr_t dx, uintptr_t flag, uintptr_t dy, uintptr_t indices,
                                 const std::string& dtype, index_t planes, Pair in_hw,
                                 Pair out_hw, uintptr_t stream) {
  require_cuda(planes >= 1 && in_hw.first >= 1 && in_hw.second >= 1 && out_hw.first >= 1 &&
                   out_hw.second >= 1,
               "max_pool2d_backward: planes and extents must be >= 1");
  Pool2dGeometry g{};
  g.H = in_hw.first; g.W = in_hw.second; g.Ho = out_hw.first; g.Wo = out_hw.second;
  dispatch_float_name("max_pool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    max_pool2d_backward_ordered_cuda(device_ptr<T>(dx), device_ptr<int64_t>(flag),
                                     device_ptr<const T>(dy),
                                     device_ptr<const int64_t>(indices), planes, g,
                                     as_stream(stream));
  });
}

void avg_pool2d_forward(uintptr_t y, uintptr_t x, const std::string& dtype, index_t planes,
                        Pair in_hw, Pair k, Pair s, Pair p, bool ceil_mode,
                        bool count_include_pad, index_t divisor_override, uintptr_t stream) {
  const Pool2dGeometry g = pool_geometry("avg_pool2d", planes, in_hw, k, s, p, {1, 1}, ceil_mode);
  dispatch_float_name("avg_pool2d", dtype, [&](auto t) {
    using T = decltype(t);
    avg_pool2d_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), planes, g,
                            count_include_pad, divisor_override, as_stream(stream));
  });
}

void avg_pool2d_backward(uintptr_t dx, uintptr_t dy, const std::string& dtype, index_t planes,
                         Pair in_hw, Pair k, Pair s, Pair p, bool ceil_mode,
                         bool count_include_pad, index_t divisor_override, uintptr_t stream) {
  const Pool2dGeometry g =
      pool_geometry("avg_pool2d_backward", planes, in_hw, k, s, p, {1, 1}, ceil_mode);
  dispatch_float_name("avg_pool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    avg_pool2d_backward_cuda(device_ptr<T>(dx), device_ptr<const T>(dy), planes, g,
                             count_include_pad, divisor_override, as_stream(stream));
  });
}

}  // namespace

void bind_pool2d(py::module_& m) {
  m.def("max_pool2d_forward", &max_pool2d_forward);
  m.def("max_pool2d_backward", &max_pool2d_backward);
  m.def("max_pool2d_backward_ordered", &max_pool2d_backward_ordered);
  m.def("avg_pool2d_forward", &avg_pool2d_forward);
  m.def("avg_pool2d_backward", &avg_pool2d_backward);
}

}  // namespace striate
