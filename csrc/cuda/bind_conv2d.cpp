// bind_conv2d.cpp (CUDA): striate._cuda.conv2d_forward / conv2d_backward /
// conv2d_backward_workspace and the conv_transpose2d_* counterparts.
// Sizes come explicitly from striate.ops (shapes already validated there):
//   conv2d            x (N, C, H, W), w (K, C/groups, kh, kw), y (N, K, Ho, Wo),
//                     stride (sh, sw), padding top/left (pt, pl), dilation (dh, dw)
//   conv_transpose2d  x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw),
//                     y (N, Cout, Hout, Wout), padding (ph, pw) on each side
// A pointer of 0 is "absent" (no bias; a gradient not needed; no workspace).
// allow_tf32 lets fp32 run on the TF32 tensor cores (striate.cuda.allow_tf32).
#include <string>

#include "bind.h"
#include "cuda/conv2d.h"
#include "cuda/conv_transpose2d.h"

namespace striate {
namespace {

void require_sizes(const std::string& op, const Conv2dGeometry& g) {
  require_cuda(g.N >= 1 && g.C >= 1 && g.H >= 1 && g.W >= 1 && g.K >= 1 && g.Ho >= 1 &&
                   g.Wo >= 1 && g.kh >= 1 && g.kw >= 1,
               op + ": every size must be >= 1");
  for (index_t v : {g.sh, g.sw}) require_geometry_cuda(op, "stride", v, 1);
  for (index_t v : {g.dh, g.dw}) require_geometry_cuda(op, "dilation", v, 1);
  for (index_t v : {g.pt, g.pl}) require_geometry_cuda(op, "padding", v, 0);
  require_cuda(g.groups >= 1 && g.C % g.groups == 0 && g.K % g.groups == 0,
               op + ": both channel counts must be divisible by groups (" +
                   std::to_string(g.groups) + ")");
}

// The geometry of conv2d itself.
Conv2dGeometry conv_geometry(const std::string& op, index_t N, index_t C, index_t H, index_t W,
                             index_t K, index_t kh, index_t kw, index_t Ho, index_t Wo,
                             index_t sh, index_t sw, index_t pt, index_t pl, index_t dh,
                             index_t dw, index_t groups) {
  Conv2dGeometry g;
  g.N = N; g.C = C; g.H = H; g.W = W;
  g.K = K; g.Ho = Ho; g.Wo = Wo;
  g.kh = kh; g.kw = kw; g.sh = sh; g.sw = sw;
  g.pt = pt; g.pl = pl; g.dh = dh; g.dw = dw;
  g.groups = groups;
  require_sizes(op, g);
  return g;
}

// The geometry of the convolution y -> x behind conv_transpose2d.
Conv2dGeometry transpose_geometry(const std::string& op, index_t N, index_t Cin, index_t H,
                                  index_t W, index_t Cout, index_t kh, index_t kw, index_t Hout,
                                  index_t Wout, index_t sh, index_t sw, index_t ph, index_t pw,
                                  index_t dh, index_t dw, index_t groups) {
  return conv_geometry(op, N, Cout, Hout, Wout, Cin, kh, kw, H, W, sh, sw, ph, pw, dh, dw, groups);
}

void require_ptr(const std::string& op, const char* name, uintptr_t p) {
  require_cuda(p != 0, op + ": " + name + " must be a device pointer, got 0");
}

void conv2d_forward(uintptr_t y, uintptr_t x, uintptr_t w, uintptr_t b, const std::string& dtype,
                    index_t N, index_t C, index_t H, index_t W, index_t K, index_t kh,
                    index_t kw, index_t Ho, index_t Wo, index_t sh, index_t sw, index_t pt,
                    index_t pl, index_t dh, index_t dw, index_t groups, bool allow_tf32,
                    uintptr_t stream) {
  const std::string op = "conv2d";
  const Conv2dGeometry g =
      conv_geometry(op, N, C, H, W, K, kh, kw, Ho, Wo, sh, sw, pt, pl, dh, dw, groups);
  require_ptr(op, "y", y);
  require_ptr(op, "x", x);
  require_ptr(op, "weight", w);
  dispatch_float_name("conv2d", dtype, [&](auto t) {
    using T = decltype(t);
    conv2d_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), device_ptr<const T>(w),
                        device_ptr<const T>(b), g, allow_tf32, as_stream(stream));
  });
}

index_t conv2d_backward_workspace(const std::string& dtype, index_t N, index_t C, index_t H,
                                  index_t W, index_t K, index_t kh, index_t kw, index_t Ho,
                                  index_t Wo, index_t sh, index_t sw, index_t pt, index_t pl,
                                  index_t dh, index_t dw, index_t groups) {
  const Conv2dGeometry g = conv_geometry("conv2d_backward", N, C, H, W, K, kh, kw, Ho, Wo, sh, sw,
                                         pt, pl, dh, dw, groups);
  return dispatch_float_name("conv2d_backward", dtype, [&](auto t) {
    return conv2d_backward_weight_workspace_cuda<decltype(t)>(g);
  });
}

void conv2d_backward(uintptr_t dx, uintptr_t dwt, uintptr_t db, uintptr_t dy, uintptr_t x,
                     uintptr_t w, const std::string& dtype, index_t N, index_t C, index_t H,
                     index_t W, index_t K, index_t kh, index_t kw, index_t Ho, index_t Wo,
                     index_t sh, index_t sw, index_t pt, index_t pl, index_t dh, index_t dw,
                     index_t groups, uintptr_t workspace, index_t workspace_count,
                     bool allow_tf32, uintptr_t stream) {
  const std::string op = "conv2d_backward";
  const Conv2dGeometry g =
      conv_geometry(op, N, C, H, W, K, kh, kw, Ho, Wo, sh, sw, pt, pl, dh, dw, groups);
  require_ptr(op, "dy", dy);
  if (dx) require_ptr(op, "weight", w);
  if (dwt) require_ptr(op, "x", x);
  require_cuda(workspace_count >= 0 && (workspace != 0 || workspace_count == 0),
               op + ": workspace_count must be >= 0 and 0 without a workspace");
  dispatch_float_name("conv2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    conv2d_backward_cuda(device_ptr<T>(dx), device_ptr<T>(dwt), device_ptr<T>(db),
                         device_ptr<const T>(dy), device_ptr<const T>(x), device_ptr<const T>(w), g,
                         device_ptr<T>(workspace), workspace_count, allow_tf32,
                         as_stream(stream));
  });
}

void conv_transpose2d_forward(uintptr_t y, uintptr_t x, uintptr_t w, uintptr_t b,
                              const std::string& dtype, index_t N, index_t Cin, index_t H,
                              index_t W, index_t Cout, index_t kh, index_t kw, index_t Hout,
                              index_t Wout, index_t sh, index_t sw, index_t ph, index_t pw,
                              index_t dh, index_t dw, index_t groups, bool allow_tf32,
                              uintptr_t stream) {
  const std::string op = "conv_transpose2d";
  const Conv2dGeometry g = transpose_geometry(op, N, Cin, H, W, Cout, kh, kw, Hout, Wout, sh, sw,
                                              ph, pw, dh, dw, groups);
  require_ptr(op, "y", y);
  require_ptr(op, "x", x);
  require_ptr(op, "weight", w);
  dispatch_float_name("conv_transpose2d", dtype, [&](auto t) {
    using T = decltype(t);
    conv_transpose2d_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x),
                                  device_ptr<const T>(w), device_ptr<const T>(b), g, allow_tf32,
                                  as_stream(stream));
  });
}

index_t conv_transpose2d_backward_workspace(const std::string& dtype, index_t N, index_t Cin,
                                            index_t H, index_t W, index_t Cout, index_t kh,
                                            index_t kw, index_t Hout, index_t Wout, index_t sh,
                                            index_t sw, index_t ph, index_t pw, index_t dh,
                                            index_t dw, index_t groups) {
  const Conv2dGeometry g = transpose_geometry("conv_transpose2d_backward", N, Cin, H, W, Cout, kh,
                                              kw, Hout, Wout, sh, sw, ph, pw, dh, dw, groups);
  return dispatch_float_name("conv_transpose2d_backward", dtype, [&](auto t) {
    return conv_transpose2d_backward_workspace_cuda<decltype(t)>(g);
  });
}

void conv_transpose2d_backward(uintptr_t dx, uintptr_t dwt, uintptr_t db, uintptr_t dy,
                               uintptr_t x, uintptr_t w, const std::string& dtype, index_t N,
                               index_t Cin, index_t H, index_t W, index_t Cout, index_t kh,
                               index_t kw, index_t Hout, index_t Wout, index_t sh, index_t sw,
                               index_t ph, index_t pw, index_t dh, index_t dw, index_t groups,
                               uintptr_t workspace, index_t workspace_count, bool allow_tf32,
                               uintptr_t stream) {
  const std::string op = "conv_transpose2d_backward";
  const Conv2dGeometry g = transpose_geometry(op, N, Cin, H, W, Cout, kh, kw, Hout, Wout, sh, sw,
                                              ph, pw, dh, dw, groups);
  require_ptr(op, "dy", dy);
  if (dx) require_ptr(op, "weight", w);
  if (dwt) require_ptr(op, "x", x);
  require_cuda(workspace_count >= 0 && (workspace != 0 || workspace_count == 0),
               op + ": workspace_count must be >= 0 and 0 without a workspace");
  dispatch_float_name("conv_transpose2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    conv_transpose2d_backward_cuda(device_ptr<T>(dx), device_ptr<T>(dwt), device_ptr<T>(db),
                                   device_ptr<const T>(dy), device_ptr<const T>(x),
                                   device_ptr<const T>(w), g, device_ptr<T>(workspace),
                                   workspace_count, allow_tf32, as_stream(stream));
  });
}

}  // namespace

void bind_conv2d(py::module_& m) {
  m.def("conv2d_forward", &conv2d_forward);
  m.def("conv2d_backward_workspace", &conv2d_backward_workspace);
  m.def("conv2d_backward", &conv2d_backward);
  m.def("conv_transpose2d_forward", &conv_transpose2d_forward);
  m.def("conv_transpose2d_backward_workspace", &conv_transpose2d_backward_workspace);
  m.def("conv_transpose2d_backward", &conv_transpose2d_backward);
}

}  // namespace striate
