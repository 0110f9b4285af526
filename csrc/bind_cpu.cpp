// bind_cpu.cpp: the striate._cpu module. Each binding checks dtypes,
// contiguity and that every array's shape agrees with the geometry, then
// passes raw pointers to the kernel with the GIL released. Outputs are
// allocated by striate.ops and passed in; nothing here computes.
#include <omp.h>

#include <pybind11/stl.h>
// numpy's C API, for the data-allocator hook only (after Python.h, which pybind11 includes).
#include <numpy/arrayobject.h>

#include <algorithm>
#include <cstring>

#include "bind_util.h"
#include "common/philox.h"
#include "common/shape.h"
#include "cpu/activation.h"
#include "cpu/allocator.h"
#include "cpu/batch_norm.h"
#include "cpu/conv2d.h"
#include "cpu/conv_transpose2d.h"
#include "cpu/dropout.h"
#include "cpu/gemm.h"
#include "cpu/optim.h"
#include "cpu/pad2d.h"
#include "cpu/pool2d.h"
#include "cpu/pyramid.h"
#include "cpu/unpool2d.h"
#include "cpu/warp.h"

namespace striate {
namespace {

using Pair = std::pair<index_t, index_t>;
using Quad = std::array<index_t, 4>;  // padding (top, bottom, left, right)

// ---------------------------------------------------------------- pad2d
void pad2d_forward(py::array y, py::array x, index_t pl, index_t pr, index_t pt, index_t pb,
                   int mode, double value) {
  const char* op = "pad2d";
  check_ndim(op, "x", x, 4);
  for (index_t v : {pl, pr, pt, pb}) require_geometry(op, "pad", v, 0);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(x);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), {s[0], s[1], s[2] + pt + pb, s[3] + pl + pr}, true);
    py::gil_scoped_release release;
    pad2d_forward_cpu(mut<T>(y), cptr<T>(x), s[0] * s[1], s[2], s[3], pl, pr, pt, pb, mode,
                      (T)value);
  });
}

void pad2d_backward(py::array dx, py::array dy, index_t pl, index_t pr, index_t pt, index_t pb,
                    int mode) {
  const char* op = "pad2d_backward";
  check_ndim(op, "dx", dx, 4);
  for (index_t v : {pl, pr, pt, pb}) require_geometry(op, "pad", v, 0);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(dx);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    check_array(op, "dy", dy, py::dtype::of<T>(), {s[0], s[1], s[2] + pt + pb, s[3] + pl + pr});
    py::gil_scoped_release release;
    pad2d_backward_cpu(mut<T>(dx), cptr<T>(dy), s[0] * s[1], s[2], s[3], pl, pr, pt, pb, mode);
  });
}

// ---------------------------------------------------------------- conv2d
void require_stride_dilation(const char* op, Pair stride, Pair dilation) {
  require_geometry(op, "stride", stride.first, 1);
  require_geometry(op, "stride", stride.second, 1);
  require_geometry(op, "dilation", dilation.first, 1);
  require_geometry(op, "dilation", dilation.second, 1);
}

// Builds the convolution geometry from x (N, C, H, W), w (K, C/groups, kh, kw)
// and the output extent, checking the channel/group arithmetic.
Conv2dGeometry conv_geometry(const char* op, const std::vector<index_t>& xs,
                             const std::vector<index_t>& ws, index_t Ho, index_t Wo, Pair stride,
                             Pair pad, Pair dilation, index_t groups) {
  require(groups >= 1, std::string(op) + ": groups must be >= 1");
  require(xs[1] % groups == 0 && ws[0] % groups == 0,
          std::string(op) + ": channels must be divisible by groups");
  require(ws[1] * groups == xs[1], std::string(op) + ": weight.shape[1] * groups (" +
                                       std::to_string(ws[1] * groups) +
                                       ") must equal the input channels (" +
                                       std::to_string(xs[1]) + ")");
  require_stride_dilation(op, stride, dilation);
  require_geometry(op, "padding", pad.first, 0);
  require_geometry(op, "padding", pad.second, 0);
  require(ws[2] >= 1 && ws[3] >= 1, std::string(op) + ": kernel must be at least 1x1");
  // The im2col buffer of one image and group, (C/groups*kh*kw) x (Ho*Wo) values.
  const index_t col[] = {xs[1] / groups, ws[2], ws[3], Ho, Wo, (index_t)sizeof(double)};
  require(checked_product(col, 6) != kSizeOverflow,
          std::string(op) + ": the im2col workspace size overflows int64 (arguments too large)");
  Conv2dGeometry g;
  g.N = xs[0]; g.C = xs[1]; g.H = xs[2]; g.W = xs[3];
  g.K = ws[0]; g.Ho = Ho; g.Wo = Wo;
  g.kh = ws[2]; g.kw = ws[3];
  g.sh = stride.first; g.sw = stride.second;
  g.pt = pad.first; g.pl = pad.second;
  g.dh = dilation.first; g.dw = dilation.second;
  g.groups = groups;
  return g;
}

// Checks x (N, C, H, W) and w (K, C/groups, kh, kw) and returns the
// convolution geometry; the output extent comes from shape.h.
Conv2dGeometry checked_conv_geometry(const char* op, const py::array& x, const py::array& w,
                                     const py::dtype& dt, Pair stride, const Quad& pad,
                                     Pair dilation, index_t groups) {
  check_array(op, "x", x, dt, {});
  check_array(op, "weight", w, dt, {});
  const auto xs = shape_of(x), ws = shape_of(w);
  require_stride_dilation(op, stride, dilation);
  for (index_t v : pad) require_geometry(op, "padding", v, 0);
  const index_t Ho = require_size(
      op, conv_output_size(xs[2], ws[2], stride.first, pad[0] + pad[1], dilation.first));
  const index_t Wo = require_size(
      op, conv_output_size(xs[3], ws[3], stride.second, pad[2] + pad[3], dilation.second));
  require(Ho >= 1 && Wo >= 1, std::string(op) + ": the kernel is larger than the padded input");
  return conv_geometry(op, xs, ws, Ho, Wo, stride, {pad[0], pad[2]}, dilation, groups);
}

void conv2d_forward(py::array y, py::array x, py::array w, py::object b, Pair stride, Quad pad,
                    Pair dilation, index_t groups, bool reference) {
  const char* op = "conv2d";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto dt = py::dtype::of<T>();
    const Conv2dGeometry g = checked_conv_geometry(op, x, w, dt, stride, pad, dilation, groups);
    check_array(op, "y", y, dt, {g.N, g.K, g.Ho, g.Wo}, true);
    py::array barr;
    const T* bp = optional_input<T>(op, "bias", b, barr, {g.K});
    py::gil_scoped_release release;
    if (reference)
      conv2d_forward_reference_cpu(mut<T>(y), cptr<T>(x), cptr<T>(w), bp, g);
    else
      conv2d_forward_cpu(mut<T>(y), cptr<T>(x), cptr<T>(w), bp, g);
  });
}

// Any of dx, dw, db may be None (not needed).
void conv2d_backward(py::object dx, py::object dw, py::object db, py::array dy, py::array x,
                     py::array w, Pair stride, Quad pad, Pair dilation, index_t groups) {
  const char* op = "conv2d_backward";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  check_ndim(op, "dy", dy, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto dt = py::dtype::of<T>();
    const Conv2dGeometry g = checked_conv_geometry(op, x, w, dt, stride, pad, dilation, groups);
    check_array(op, "dy", dy, dt, {g.N, g.K, g.Ho, g.Wo});
    const auto xs = shape_of(x), ws = shape_of(w);
    py::array hx, hw, hb;
    T* dxp = optional_output<T>(op, "dx", dx, hx, xs);
    T* dwp = optional_output<T>(op, "dw", dw, hw, ws);
    T* dbp = optional_output<T>(op, "db", db, hb, {g.K});
    py::gil_scoped_release release;
    if (dxp) conv2d_backward_data_cpu(dxp, cptr<T>(dy), cptr<T>(w), g);
    if (dwp) conv2d_backward_weight_cpu(dwp, cptr<T>(dy), cptr<T>(x), g);
    if (dbp) conv2d_backward_bias_cpu(dbp, cptr<T>(dy), g.N, g.K, g.Ho * g.Wo);
  });
}

// ------------------------------------------------------- conv_transpose2d
// x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw), y (N, Cout, Ho, Wo): the
// geometry is that of the convolution y -> x. Checks the y (or dy) array
// against the transposed-convolution output size and returns the geometry.
// The geometry of the convolution y -> x behind a transposed convolution of
// x (N, Cin, H, W) with w (Cin, Cout/groups, kh, kw); y is (N, Cout, Ho, Wo).
Conv2dGeometry transposed_geometry(const char* op, const std::vector<index_t>& xs,
                                   const std::vector<index_t>& ws, Pair stride, Pair pad,
                                   Pair output_padding, Pair dilation, index_t groups) {
  require(groups >= 1 && xs[1] % groups == 0 && ws[0] == xs[1],
          std::string(op) + ": weight.shape[0] must equal in_channels, divisible by groups");
  require_stride_dilation(op, stride, dilation);
  for (index_t v : {pad.first, pad.second}) require_geometry(op, "padding", v, 0);
  for (index_t v : {output_padding.first, output_padding.second})
    require_geometry(op, "output_padding", v, 0);
  const index_t Ho = require_size(op, conv_transpose_output_size(xs[2], ws[2], stride.first,
                                                                 pad.first, dilation.first,
                                                                 output_padding.first));
  const index_t Wo = require_size(op, conv_transpose_output_size(xs[3], ws[3], stride.second,
                                                                 pad.second, dilation.second,
                                                                 output_padding.second));
  require(Ho >= 1 && Wo >= 1, std::string(op) + ": the output would be empty");
  return conv_geometry(op, {xs[0], ws[1] * groups, Ho, Wo}, ws, xs[2], xs[3], stride, pad,
                       dilation, groups);
}

// transposed_geometry, with the y (or dy) array checked against it.
Conv2dGeometry conv_transpose_geometry(const char* op, const char* yname, const py::array& y,
                                       const std::vector<index_t>& xs,
                                       const std::vector<index_t>& ws, const py::dtype& dt,
                                       Pair stride, Pair pad, Pair output_padding, Pair dilation,
                                       index_t groups, bool writable) {
  const Conv2dGeometry g =
      transposed_geometry(op, xs, ws, stride, pad, output_padding, dilation, groups);
  check_array(op, yname, y, dt, {g.N, g.C, g.H, g.W}, writable);
  return g;
}

// Bytes of scratch the CPU kernels take for geometry g with elements of elem bytes.
index_t workspace_bytes(const char* op, const Conv2dGeometry& g, size_t elem) {
  index_t bytes;
  const index_t values = conv2d_workspace_values_cpu(g, elem);
  require(values != kSizeOverflow && checked_mul(values, (index_t)elem, &bytes),
          std::string(op) + ": the im2col workspace size overflows int64 (arguments too large)");
  return bytes;
}

index_t conv2d_workspace_bytes(py::array x, py::array w, Pair stride, Quad pad, Pair dilation,
                               index_t groups) {
  const char* op = "conv2d";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  return dispatch_float(op, x, [&](auto t) {
    const Conv2dGeometry g = checked_conv_geometry(op, x, w, py::dtype::of<decltype(t)>(),
                                                   stride, pad, dilation, groups);
    return workspace_bytes(op, g, sizeof(t));
  });
}

index_t conv_transpose2d_workspace_bytes(py::array x, py::array w, Pair stride, Pair pad,
                                         Pair output_padding, Pair dilation, index_t groups) {
  const char* op = "conv_transpose2d";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  return dispatch_float(op, x, [&](auto t) {
    const Conv2dGeometry g = transposed_geometry(op, shape_of(x), shape_of(w), stride, pad,
                                                 output_padding, dilation, groups);
    return workspace_bytes(op, g, sizeof(t));
  });
}

void conv_transpose2d_forward(py::array y, py::array x, py::array w, py::object b, Pair stride,
                              Pair pad, Pair output_padding, Pair dilation, index_t groups) {
  const char* op = "conv_transpose2d";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto dt = py::dtype::of<T>();
    check_array(op, "x", x, dt, {});
    check_array(op, "weight", w, dt, {});
    Conv2dGeometry g = conv_transpose_geometry(op, "y", y, shape_of(x), shape_of(w), dt, stride,
                                               pad, output_padding, dilation, groups, true);
    py::array barr;
    const T* bp = optional_input<T>(op, "bias", b, barr, {g.C});
    py::gil_scoped_release release;
    conv_transpose2d_forward_cpu(mut<T>(y), cptr<T>(x), cptr<T>(w), bp, g);
  });
}

void conv_transpose2d_backward(py::object dx, py::object dw, py::object db, py::array dy,
                               py::array x, py::array w, Pair stride, Pair pad,
                               Pair output_padding, Pair dilation, index_t groups) {
  const char* op = "conv_transpose2d_backward";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "weight", w, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto dt = py::dtype::of<T>();
    const auto xs = shape_of(x), ws = shape_of(w);
    check_array(op, "x", x, dt, {});
    check_array(op, "weight", w, dt, {});
    Conv2dGeometry g = conv_transpose_geometry(op, "dy", dy, xs, ws, dt, stride, pad,
                                               output_padding, dilation, groups, false);
    py::array hx, hw, hb;
    T* dxp = optional_output<T>(op, "dx", dx, hx, xs);
    T* dwp = optional_output<T>(op, "dw", dw, hw, ws);
    T* dbp = optional_output<T>(op, "db", db, hb, {g.C});
    py::gil_scoped_release release;
    conv_transpose2d_backward_cpu(dxp, dwp, dbp, cptr<T>(dy), cptr<T>(x), cptr<T>(w), g);
  });
}

// ---------------------------------------------------------------- matmul
// c (M, N) = op(a) @ op(b), op = transpose when the flag is set; a, b, c are
// C-contiguous 2-D arrays of one float dtype.
void matmul(py::array c, py::array a, py::array b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  check_ndim(op, "a", a, 2);
  check_ndim(op, "b", b, 2);
  dispatch_float(op, a, [&](auto t) {
    using T = decltype(t);
    const auto dt = py::dtype::of<T>();
    check_array(op, "a", a, dt, {});
    check_array(op, "b", b, dt, {});
    const auto as = shape_of(a), bs = shape_of(b);
    const index_t M = trans_a ? as[1] : as[0], K = trans_a ? as[0] : as[1];
    const index_t Kb = trans_b ? bs[1] : bs[0], N = trans_b ? bs[0] : bs[1];
    require(K == Kb, "matmul: inner dimensions differ (" + std::to_string(K) + " vs " +
                         std::to_string(Kb) + ")");
    check_array(op, "c", c, dt, {M, N}, true);
    // A(i, k) = a[i*lda + k] or a[k*lda + i]; likewise for B.
    const index_t rs_a = trans_a ? 1 : as[1], cs_a = trans_a ? as[1] : 1;
    const index_t rs_b = trans_b ? 1 : bs[1], cs_b = trans_b ? bs[1] : 1;
    py::gil_scoped_release release;
    gemm_parallel_cpu(M, N, K, cptr<T>(a), rs_a, cs_a, cptr<T>(b), rs_b, cs_b, mut<T>(c), N,
                      false);
  });
}

// ---------------------------------------------------------------- pool2d
// Geometry of pooling x (N, C, H, W); the output extent comes from shape.h.
Pool2dGeometry pool_geometry(const char* op, const std::vector<index_t>& xs, Pair k, Pair s,
                             Pair p, Pair d, bool ceil_mode) {
  for (index_t v : {k.first, k.second}) require_geometry(op, "kernel_size", v, 1);
  require_stride_dilation(op, s, d);
  for (index_t v : {p.first, p.second}) require_geometry(op, "padding", v, 0);
  require(2 * p.first <= k.first && 2 * p.second <= k.second,
          std::string(op) + ": padding must be at most half the kernel size");
  Pool2dGeometry g;
  g.H = xs[2]; g.W = xs[3];
  g.kh = k.first; g.kw = k.second; g.sh = s.first; g.sw = s.second;
  g.ph = p.first; g.pw = p.second; g.dh = d.first; g.dw = d.second;
  g.Ho = require_size(op, pool_output_size(g.H, g.kh, g.sh, g.ph, g.dh, ceil_mode));
  g.Wo = require_size(op, pool_output_size(g.W, g.kw, g.sw, g.pw, g.dw, ceil_mode));
  require(g.Ho >= 1 && g.Wo >= 1, std::string(op) + ": the output would be empty");
  return g;
}

void max_pool2d_forward(py::array y, py::array indices, py::array x, Pair k, Pair s, Pair p,
                        Pair d, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_ndim(op, "x", x, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(x);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    const Pool2dGeometry g = pool_geometry(op, xs, k, s, p, d, ceil_mode);
    check_array(op, "y", y, py::dtype::of<T>(), {xs[0], xs[1], g.Ho, g.Wo}, true);
    check_array(op, "indices", indices, py::dtype::of<int64_t>(), {xs[0], xs[1], g.Ho, g.Wo},
                true);
    py::gil_scoped_release release;
    max_pool2d_forward_cpu(mut<T>(y), mut<int64_t>(indices), cptr<T>(x), xs[0] * xs[1], g);
  });
}

// Any extents: every index is checked against the input plane.
void max_pool2d_backward(py::array dx, py::array dy, py::array indices) {
  const char* op = "max_pool2d_backward";
  check_ndim(op, "dx", dx, 4);
  check_ndim(op, "dy", dy, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(dx), ys = shape_of(dy);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    check_array(op, "dy", dy, py::dtype::of<T>(), {xs[0], xs[1], ys[2], ys[3]});
    check_array(op, "indices", indices, py::dtype::of<int64_t>(), ys);
    Pool2dGeometry g{};
    g.H = xs[2]; g.W = xs[3]; g.Ho = ys[2]; g.Wo = ys[3];
    index_t bad;
    {
      py::gil_scoped_release release;
      bad = max_pool2d_backward_cpu(mut<T>(dx), cptr<T>(dy), cptr<int64_t>(indices),
                                    xs[0] * xs[1], g);
    }
    require(bad < 0, "max_pool2d_backward: indices.flat[" + std::to_string(bad) + "] = " +
                         std::to_string(bad < 0 ? 0 : cptr<int64_t>(indices)[bad]) +
                         " is outside the input plane [0, " + std::to_string(xs[2] * xs[3]) + ")");
  });
}

void avg_pool2d_forward(py::array y, py::array x, Pair k, Pair s, Pair p, bool ceil_mode,
                        bool count_include_pad, index_t divisor_override) {
  const char* op = "avg_pool2d";
  check_ndim(op, "x", x, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(x);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    const Pool2dGeometry g = pool_geometry(op, xs, k, s, p, {1, 1}, ceil_mode);
    check_array(op, "y", y, py::dtype::of<T>(), {xs[0], xs[1], g.Ho, g.Wo}, true);
    py::gil_scoped_release release;
    avg_pool2d_forward_cpu(mut<T>(y), cptr<T>(x), xs[0] * xs[1], g, count_include_pad,
                           divisor_override);
  });
}

void avg_pool2d_backward(py::array dx, py::array dy, Pair k, Pair s, Pair p, bool ceil_mode,
                         bool count_include_pad, index_t divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_ndim(op, "dx", dx, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(dx);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    const Pool2dGeometry g = pool_geometry(op, xs, k, s, p, {1, 1}, ceil_mode);
    check_array(op, "dy", dy, py::dtype::of<T>(), {xs[0], xs[1], g.Ho, g.Wo});
    py::gil_scoped_release release;
    avg_pool2d_backward_cpu(mut<T>(dx), cptr<T>(dy), xs[0] * xs[1], g, count_include_pad,
                            divisor_override);
  });
}

// -------------------------------------------------------------- unpool2d
void raise_bad_unpool_index(const char* op, const py::array& indices, index_t bad,
                            index_t limit) {
  throw py::value_error(std::string(op) + ": indices.flat[" + std::to_string(bad) + "] = " +
                        std::to_string(cptr<int64_t>(indices)[bad]) +
                        " is outside the output plane [0, " + std::to_string(limit) + ")");
}

void max_unpool2d_forward(py::array y, py::array x, py::array indices) {
  const char* op = "max_unpool2d";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "y", y, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(x), ys = shape_of(y);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "indices", indices, py::dtype::of<int64_t>(), xs);
    check_array(op, "y", y, py::dtype::of<T>(), {xs[0], xs[1], ys[2], ys[3]}, true);
    index_t bad;
    {
      py::gil_scoped_release release;
      bad = max_unpool2d_forward_cpu(mut<T>(y), cptr<T>(x), cptr<int64_t>(indices),
                                     xs[0] * xs[1], xs[2] * xs[3], ys[2] * ys[3]);
    }
    if (bad >= 0) raise_bad_unpool_index(op, indices, bad, ys[2] * ys[3]);
  });
}

void max_unpool2d_backward(py::array dx, py::array dy, py::array indices) {
  const char* op = "max_unpool2d_backward";
  check_ndim(op, "dx", dx, 4);
  check_ndim(op, "dy", dy, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(dx), ys = shape_of(dy);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    check_array(op, "indices", indices, py::dtype::of<int64_t>(), xs);
    check_array(op, "dy", dy, py::dtype::of<T>(), {xs[0], xs[1], ys[2], ys[3]});
    index_t bad;
    {
      py::gil_scoped_release release;
      bad = max_unpool2d_backward_cpu(mut<T>(dx), cptr<T>(dy), cptr<int64_t>(indices),
                                      xs[0] * xs[1], xs[2] * xs[3], ys[2] * ys[3]);
    }
    if (bad >= 0) raise_bad_unpool_index(op, indices, bad, ys[2] * ys[3]);
  });
}

// ------------------------------------------------------- buffer cache
// numpy's data-allocator hook (NEP 49) routed to cpu/allocator.cpp.
void* numpy_malloc(void*, size_t size) { return cache_alloc(size); }

void* numpy_calloc(void*, size_t count, size_t elsize) {
  if (elsize != 0 && count > SIZE_MAX / elsize) return nullptr;
  void* p = cache_alloc(count * elsize);
  if (p) std::memset(p, 0, count * elsize);
  return p;
}

void* numpy_realloc(void*, void* p, size_t size) {
  if (!p) return cache_alloc(size);
  const size_t old = cache_block_size(p);
  if (size <= old && size >= old / 2) return p;  // still fits without wasting half the block
  void* q = cache_alloc(size);
  if (!q) return nullptr;  // p stays valid, as with realloc
  std::memcpy(q, p, std::min(old, size));
  cache_free(p);
  return q;
}

void numpy_free(void*, void* p, size_t) { cache_free(p); }

PyDataMem_Handler numpy_handler = {
    "striate_buffer_cache", 1, {nullptr, numpy_malloc, numpy_calloc, numpy_realloc, numpy_free}};

// Makes the cache numpy's allocator for the calling thread's context (striate does this at
// import, in the importing thread). Arrays keep the handler that allocated them.
void install_buffer_cache() {
  if (_import_array() < 0) throw py::error_already_set();
  PyObject* capsule = PyCapsule_New(&numpy_handler, "mem_handler", nullptr);
  if (!capsule) throw py::error_already_set();
  PyObject* old = PyDataMem_SetHandler(capsule);
  Py_DECREF(capsule);
  if (!old) throw py::error_already_set();
  Py_DECREF(old);
}

py::dict buffer_cache_stats() {
  const CacheStats s = cache_stats();
  py::dict d;
  d["cached_bytes"] = s.cached_bytes;
  d["cached_blocks"] = s.cached_blocks;
  d["limit_bytes"] = s.limit_bytes;
  d["hits"] = s.hits;
  d["misses"] = s.misses;
  d["allocated_bytes"] = s.allocated_bytes;
  return d;
}

// ------------------------------------------------------------ activation
// out = f(a) or out = f(a, saved) element-wise; every array has a's shape and dtype.
void relu_forward(py::array y, py::array x) {
  const char* op = "relu";
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), shape_of(x), true);
    py::gil_scoped_release release;
    relu_forward_cpu(mut<T>(y), cptr<T>(x), (index_t)x.size());
  });
}

void relu_backward(py::array dx, py::array dy, py::array y) {
  const char* op = "relu_backward";
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    check_array(op, "dy", dy, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), shape_of(dy));
    check_array(op, "dx", dx, py::dtype::of<T>(), shape_of(dy), true);
    py::gil_scoped_release release;
    relu_backward_cpu(mut<T>(dx), cptr<T>(dy), cptr<T>(y), (index_t)dy.size());
  });
}

void leaky_relu_forward(py::array y, py::array x, double slope) {
  const char* op = "leaky_relu";
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), shape_of(x), true);
    py::gil_scoped_release release;
    leaky_relu_forward_cpu(mut<T>(y), cptr<T>(x), (T)slope, (index_t)x.size());
  });
}

void leaky_relu_backward(py::array dx, py::array dy, py::array x, double slope) {
  const char* op = "leaky_relu_backward";
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    check_array(op, "dy", dy, py::dtype::of<T>(), {});
    check_array(op, "x", x, py::dtype::of<T>(), shape_of(dy));
    check_array(op, "dx", dx, py::dtype::of<T>(), shape_of(dy), true);
    py::gil_scoped_release release;
    leaky_relu_backward_cpu(mut<T>(dx), cptr<T>(dy), cptr<T>(x), (T)slope, (index_t)dy.size());
  });
}

// ------------------------------------------------------------ optim
// In-place updates of one parameter: every array has p's dtype and size.
void check_state(const char* op, const char* name, const py::array& a, const py::array& p, bool writable) {
  check_array(op, name, a, p.dtype(), {}, writable);
  if (a.size() != p.size())
    throw py::value_error(std::string(op) + ": " + name + " must have " + std::to_string(p.size()) +
                          " elements (as p), got " + std::to_string(a.size()));
}

// buf (the momentum buffer) is None without momentum.
void sgd_update(py::array p, py::array grad, py::object buf_or_none, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov, bool first) {
  const char* op = "sgd_update";
  const bool with_buffer = momentum != 0;
  require(!with_buffer || !buf_or_none.is_none(), std::string(op) + ": momentum needs buf, got None");
  dispatch_float(op, p, [&](auto t) {
    using T = decltype(t);
    check_array(op, "p", p, py::dtype::of<T>(), {}, true);
    check_state(op, "grad", grad, p, false);
    py::array buf = with_buffer ? py::array(buf_or_none) : py::array();
    if (with_buffer) check_state(op, "buf", buf, p, true);
    const SgdOptions o{lr, momentum, dampening, weight_decay, nesterov};
    py::gil_scoped_release release;
    sgd_update_cpu(mut<T>(p), cptr<T>(grad), with_buffer ? mut<T>(buf) : nullptr, (index_t)p.size(), o,
                   first);
  });
}

void adam_update(py::array p, py::array grad, py::array exp_avg, py::array exp_avg_sq,
                 py::object max_exp_avg_sq, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bool decoupled, std::int64_t step) {
  const char* op = "adam_update";
  require(step >= 1, std::string(op) + ": step must be >= 1, got " + std::to_string(step));
  dispatch_float(op, p, [&](auto t) {
    using T = decltype(t);
    check_array(op, "p", p, py::dtype::of<T>(), {}, true);
    check_state(op, "grad", grad, p, false);
    check_state(op, "exp_avg", exp_avg, p, true);
    check_state(op, "exp_avg_sq", exp_avg_sq, p, true);
    const bool amsgrad = !max_exp_avg_sq.is_none();
    py::array vmax = amsgrad ? py::array(max_exp_avg_sq) : py::array();
    if (amsgrad) check_state(op, "max_exp_avg_sq", vmax, p, true);
    const AdamOptions o{lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad, step};
    py::gil_scoped_release release;
    adam_update_cpu(mut<T>(p), cptr<T>(grad), mut<T>(exp_avg), mut<T>(exp_avg_sq),
                    amsgrad ? mut<T>(vmax) : nullptr, (index_t)p.size(), o);
  });
}

// ------------------------------------------------------------ batch_norm
// x is (N, C, ...): the kernels see (N, C, S) with S the product of the rest.
struct ChannelView {
  index_t N, C, S;
};

ChannelView channel_view(const char* op, const py::array& x) {
  require(x.ndim() >= 2, std::string(op) + ": x must be (N, C) or (N, C, ...), got " +
                             std::to_string(x.ndim()) + "-D");
  const auto s = shape_of(x);
  ChannelView v{s[0], s[1], 1};
  for (size_t i = 2; i < s.size(); ++i) v.S *= s[i];  // the array exists: no overflow
  return v;
}

void batch_norm_forward(py::array y, py::array mean, py::array var, py::array invstd, py::array x,
                        py::object w, py::object b, double eps) {
  const char* op = "batch_norm";
  const ChannelView v = channel_view(op, x);
  require(v.N * v.S >= 2, std::string(op) + ": training needs more than 1 value per channel, got " +
                              std::to_string(v.N * v.S));
  require(eps >= 0.0, std::string(op) + ": eps must be >= 0, got " + std::to_string(eps));
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), shape_of(x), true);
    for (auto* a : {&mean, &var, &invstd}) check_array(op, "statistics", *a, py::dtype::of<T>(), {v.C}, true);
    py::array wh, bh;
    const T* wp = optional_input<T>(op, "weight", w, wh, {v.C});
    const T* bp = optional_input<T>(op, "bias", b, bh, {v.C});
    py::gil_scoped_release release;
    batch_norm_forward_cpu(mut<T>(y), mut<T>(mean), mut<T>(var), mut<T>(invstd), cptr<T>(x), wp, bp,
                           v.N, v.C, v.S, eps);
  });
}

void batch_norm_backward(py::object dx, py::object dw, py::object db, py::array g, py::array x,
                         py::object w, py::array mean, py::array invstd) {
  const char* op = "batch_norm_backward";
  const ChannelView v = channel_view(op, x);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "dy", g, py::dtype::of<T>(), shape_of(x));
    check_array(op, "mean", mean, py::dtype::of<T>(), {v.C});
    check_array(op, "invstd", invstd, py::dtype::of<T>(), {v.C});
    py::array wh, dxh, dwh, dbh;
    const T* wp = optional_input<T>(op, "weight", w, wh, {v.C});
    T* dxp = optional_output<T>(op, "dx", dx, dxh, shape_of(x));
    T* dwp = optional_output<T>(op, "dweight", dw, dwh, {v.C});
    T* dbp = optional_output<T>(op, "dbias", db, dbh, {v.C});
    py::gil_scoped_release release;
    batch_norm_backward_cpu(dxp, dwp, dbp, cptr<T>(g), cptr<T>(x), wp, cptr<T>(mean),
                            cptr<T>(invstd), v.N, v.C, v.S);
  });
}

// --------------------------------------------------------------- dropout
void dropout_forward(py::array y, py::array mask, py::array x, uint64_t seed, uint64_t offset,
                     double p, double scale) {
  const char* op = "dropout";
  require(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1]");
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto xs = shape_of(x);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), xs, true);
    check_array(op, "mask", mask, py::dtype::of<uint8_t>(), xs, true);
    const uint64_t threshold = dropout_threshold(p);
    py::gil_scoped_release release;
    dropout_forward_cpu(mut<T>(y), mut<uint8_t>(mask), cptr<T>(x), (index_t)x.size(), seed,
                        offset, threshold, (T)scale);
  });
}

void dropout_backward(py::array dx, py::array dy, py::array mask, double scale) {
  const char* op = "dropout_backward";
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(dy);
    check_array(op, "dy", dy, py::dtype::of<T>(), {});
    check_array(op, "dx", dx, py::dtype::of<T>(), s, true);
    check_array(op, "mask", mask, py::dtype::of<uint8_t>(), s);
    py::gil_scoped_release release;
    dropout_backward_cpu(mut<T>(dx), cptr<T>(dy), cptr<uint8_t>(mask), (index_t)dy.size(),
                         (T)scale);
  });
}

py::tuple philox(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
  uint32_t out[4];
  philox4x32_10_cpu(out, ctr.data(), key.data());
  return py::make_tuple(out[0], out[1], out[2], out[3]);
}

// --------------------------------------------------------------- pyramid
void pyr_down_forward(py::array y, py::array x) {
  const char* op = "pyr_down";
  check_ndim(op, "x", x, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(x);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(),
                {s[0], s[1], pyr_down_output_size(s[2]), pyr_down_output_size(s[3])}, true);
    py::gil_scoped_release release;
    pyr_down_forward_cpu(mut<T>(y), cptr<T>(x), s[0] * s[1], s[2], s[3]);
  });
}

void pyr_down_backward(py::array dx, py::array dy) {
  const char* op = "pyr_down_backward";
  check_ndim(op, "dx", dx, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(dx);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    check_array(op, "dy", dy, py::dtype::of<T>(),
                {s[0], s[1], pyr_down_output_size(s[2]), pyr_down_output_size(s[3])});
    py::gil_scoped_release release;
    pyr_down_backward_cpu(mut<T>(dx), cptr<T>(dy), s[0] * s[1], s[2], s[3]);
  });
}

void pyr_up_forward(py::array y, py::array x) {
  const char* op = "pyr_up";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "y", y, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(x), ys = shape_of(y);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "y", y, py::dtype::of<T>(), {s[0], s[1], ys[2], ys[3]}, true);
    require(pyr_up_size_ok(s[2], ys[2]) && pyr_up_size_ok(s[3], ys[3]),
            "pyr_up: each output side must be 2n, or 2n +- 1 when odd");
    py::gil_scoped_release release;
    pyr_up_forward_cpu(mut<T>(y), cptr<T>(x), s[0] * s[1], s[2], s[3], ys[2], ys[3]);
  });
}

void pyr_up_backward(py::array dx, py::array dy) {
  const char* op = "pyr_up_backward";
  check_ndim(op, "dx", dx, 4);
  check_ndim(op, "dy", dy, 4);
  dispatch_float(op, dy, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(dx), ys = shape_of(dy);
    check_array(op, "dx", dx, py::dtype::of<T>(), {}, true);
    check_array(op, "dy", dy, py::dtype::of<T>(), {s[0], s[1], ys[2], ys[3]});
    require(pyr_up_size_ok(s[2], ys[2]) && pyr_up_size_ok(s[3], ys[3]),
            "pyr_up_backward: each dy side must be 2n, or 2n +- 1 when odd");
    py::gil_scoped_release release;
    pyr_up_backward_cpu(mut<T>(dx), cptr<T>(dy), s[0] * s[1], s[2], s[3], ys[2], ys[3]);
  });
}

// ------------------------------------------------------------------ warp
void warp_affine_forward(py::array y, py::array x, py::array theta, int mode, int padding,
                         bool align_corners) {
  const char* op = "warp_affine";
  check_ndim(op, "x", x, 4);
  check_ndim(op, "y", y, 4);
  dispatch_float(op, x, [&](auto t) {
    using T = decltype(t);
    const auto s = shape_of(x), ys = shape_of(y);
    check_array(op, "x", x, py::dtype::of<T>(), {});
    check_array(op, "theta", theta, py::dtype::of<T>(), {s[0], 2, 3});
    check_array(op, "y", y, py::dtype::of<T>(), {s[0], s[1], ys[2], ys[3]}, true);
    require(mode == 0 || mode == 1, "warp_affine: unknown mode");
    require(padding >= 0 && padding <= 2, "warp_affine: unknown padding_mode");
    py::gil_scoped_release release;
    warp_affine_forward_cpu(mut<T>(y), cptr<T>(x), cptr<T>(theta), s[0], s[1], s[2], s[3], ys[2],
                            ys[3], mode, padding, align_corners);
  });
}

}  // namespace
}  // namespace striate

PYBIND11_MODULE(_cpu, m) {
  using namespace striate;
  namespace py = pybind11;
  m.doc() = "striate CPU kernels (C++17, OpenMP). Use striate.ops, which validates and allocates.";

  m.def("set_num_threads", [](int n) { omp_set_num_threads(n); });
  m.def("get_num_threads", []() { return omp_get_max_threads(); });

  m.def("set_conv2d_strategy", [](const std::string& name) {
    const int s = name == "auto" ? CONV2D_AUTO : name == "per_image" ? CONV2D_PER_IMAGE
                : name == "batched" ? CONV2D_BATCHED : name == "direct" ? CONV2D_DIRECT : -1;
    require(s >= 0, "set_conv2d_strategy: expected 'auto', 'per_image', 'batched' or 'direct', got '" + name + "'");
    set_conv2d_strategy_cpu(s);
  });
  m.def("get_conv2d_strategy", []() {
    const int s = get_conv2d_strategy_cpu();
    return std::string(s == CONV2D_PER_IMAGE ? "per_image" : s == CONV2D_BATCHED ? "batched"
                       : s == CONV2D_DIRECT ? "direct" : "auto");
  });

  m.def("conv_output_size", &conv_output_size);
  m.def("conv_transpose_output_size", &conv_transpose_output_size);
  m.def("pool_output_size", &pool_output_size);
  m.def("pool_windows_nonempty", &pool_windows_nonempty);
  m.def("unpool_output_size", &unpool_output_size);
  m.def("pyr_down_output_size", &pyr_down_output_size);
  m.def("pyr_up_size_ok", &pyr_up_size_ok);

  m.def("pad2d_forward", &pad2d_forward);
  m.def("pad2d_backward", &pad2d_backward);
  m.def("conv2d_forward", &conv2d_forward, py::arg("y"), py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("stride"), py::arg("pad"), py::arg("dilation"), py::arg("groups"),
        py::arg("reference") = false);
  m.def("conv2d_backward", &conv2d_backward);
  m.def("conv_transpose2d_forward", &conv_transpose2d_forward);
  m.def("conv2d_workspace_bytes", &conv2d_workspace_bytes);
  m.def("conv_transpose2d_workspace_bytes", &conv_transpose2d_workspace_bytes);
  m.def("conv_transpose2d_backward", &conv_transpose2d_backward);
  m.def("matmul", &matmul);
  m.def("max_pool2d_forward", &max_pool2d_forward);
  m.def("max_pool2d_backward", &max_pool2d_backward);
  m.def("avg_pool2d_forward", &avg_pool2d_forward);
  m.def("avg_pool2d_backward", &avg_pool2d_backward);
  m.def("max_unpool2d_forward", &max_unpool2d_forward);
  m.def("max_unpool2d_backward", &max_unpool2d_backward);
  m.def("install_buffer_cache", &install_buffer_cache);
  m.def("buffer_cache_stats", &buffer_cache_stats);
  m.def("empty_buffer_cache", &cache_empty);
  m.def("set_buffer_cache_limit", &cache_set_limit);
  m.def("sgd_update", &sgd_update);
  m.def("adam_update", &adam_update);
  m.def("relu_forward", &relu_forward);
  m.def("relu_backward", &relu_backward);
  m.def("leaky_relu_forward", &leaky_relu_forward);
  m.def("leaky_relu_backward", &leaky_relu_backward);
  m.def("batch_norm_forward", &batch_norm_forward);
  m.def("batch_norm_backward", &batch_norm_backward);
  m.def("dropout_forward", &dropout_forward);
  m.def("dropout_backward", &dropout_backward);
  m.def("philox4x32_10", &philox);
  m.def("pyr_down_forward", &pyr_down_forward);
  m.def("pyr_down_backward", &pyr_down_backward);
  m.def("pyr_up_forward", &pyr_up_forward);
  m.def("pyr_up_backward", &pyr_up_backward);
  m.def("warp_affine_forward", &warp_affine_forward);
}
