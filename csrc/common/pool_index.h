// pool_index.h: per-output-cell pooling math shared by CPU and CUDA kernels.
// Windows start at o*stride - pad; cells outside the plane never take part
// (padding never wins a max). Argmax indices are flat h*W + w within the
// (n, c) plane, PyTorch's encoding.
#pragma once
#include <cmath>

#include "macros.h"

namespace striate {

struct Pool2dGeometry {
  index_t H, W, Ho, Wo;
  index_t kh, kw, sh, sw, ph, pw, dh, dw;
};

// Taps [a0, a1) of a window starting at `start` with `k` taps `d` apart
// whose coordinate start + a*d lies in [0, n): the window clipped to the
// plane in closed form, so a huge kernel costs no more than the plane.
STRIATE_HD inline void window_taps_inside(index_t start, index_t k, index_t d, index_t n,
                                          index_t* a0, index_t* a1) {
  index_t lo = start >= 0 ? 0 : (-start + d - 1) / d;  // first tap at or right of 0
  index_t hi = start >= n ? 0 : (n - 1 - start) / d + 1;  // one past the last tap left of n
  lo = lo < k ? lo : k;
  hi = hi < k ? hi : k;
  *a0 = lo;
  *a1 = hi > lo ? hi : lo;
}

// Whether a window's later candidate v displaces the best so far: larger, or NaN (a NaN wins
// over any number, the last NaN seen; ties keep the first). Written without short-circuits so
// that the CPU's select loops vectorise it.
template <typename T>
STRIATE_HD inline bool max_pool_takes(T v, T best) {
  return (v > best) | (v != v);
}

// Max over one window with PyTorch's rules: the first maximum in row-major
// window order wins ties; a NaN wins over any number (the last NaN seen).
// When every candidate is -inf the index is the first in-plane cell.
template <typename T>
STRIATE_HD inline void max_pool_cell(const T* plane, const Pool2dGeometry& g, index_t oh,
                                     index_t ow, T* out, int64_t* out_index) {
  const index_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  index_t a0, a1, b0, b1;
  window_taps_inside(h0, g.kh, g.dh, g.H, &a0, &a1);
  window_taps_inside(w0, g.kw, g.dw, g.W, &b0, &b1);
  T best = -T(INFINITY);
  int64_t best_index = -1;  // stays -1 only if the window holds no in-plane cell
  for (index_t a = a0; a < a1; ++a) {
    const index_t h = h0 + a * g.dh;
    for (index_t b = b0; b < b1; ++b) {
      const index_t w = w0 + b * g.dw;
      T v = plane[h * g.W + w];
      if (best_index < 0 || max_pool_takes(v, best)) {
        best = v;
        best_index = h * g.W + w;
      }
    }
  }
  *out = best;
  *out_index = best_index;
}

// The common 2x2, stride-2, unpadded window at (h, w) .. (h+1, w+1), fully
// inside the plane: max_pool_cell's rule on its four cells in row-major
// order (a later cell wins if it is larger or NaN), unrolled.
template <typename T>
STRIATE_HD inline void max_pool_2x2_cell(T v00, T v01, T v10, T v11, index_t h, index_t w,
                                         index_t W, T* out, int64_t* out_index) {
  T best = v00;
  int64_t best_index = h * W + w;
  if (max_pool_takes(v01, best)) {
    best = v01;
    best_index = h * W + w + 1;
  }
  if (max_pool_takes(v10, best)) {
    best = v10;
    best_index = (h + 1) * W + w;
  }
  if (max_pool_takes(v11, best)) {
    best = v11;
    best_index = (h + 1) * W + w + 1;
  }
  *out = best;
  *out_index = best_index;
}

// The in-plane part [h0, h1) x [w0, w1) of an average-pooling window and its
// divisor (no dilation; PyTorch's definition: the padded window is clipped
// to in + pad before counting, and count_include_pad counts that area).
struct AvgWindow {
  index_t h0, h1, w0, w1, divisor;
};

STRIATE_HD inline AvgWindow avg_pool_window(const Pool2dGeometry& g, index_t oh, index_t ow,
                                            bool count_include_pad, index_t divisor_override) {
  index_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  index_t h1 = h0 + g.kh < g.H + g.ph ? h0 + g.kh : g.H + g.ph;
  index_t w1 = w0 + g.kw < g.W + g.pw ? w0 + g.kw : g.W + g.pw;
  const index_t pool_size = (h1 - h0) * (w1 - w0);
  AvgWindow r;
  r.h0 = h0 > 0 ? h0 : 0;
  r.w0 = w0 > 0 ? w0 : 0;
  r.h1 = h1 < g.H ? h1 : g.H;
  r.w1 = w1 < g.W ? w1 : g.W;
  r.divisor = divisor_override > 0 ? divisor_override
              : count_include_pad  ? pool_size
                                   : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

template <typename T>
STRIATE_HD inline T avg_pool_cell(const T* plane, const Pool2dGeometry& g, index_t oh, index_t ow,
                                  bool count_include_pad, index_t divisor_override) {
  const AvgWindow win = avg_pool_window(g, oh, ow, count_include_pad, divisor_override);
  T sum = T(0);
  for (index_t h = win.h0; h < win.h1; ++h)
    for (index_t w = win.w0; w < win.w1; ++w) sum += plane[h * g.W + w];
  return win.divisor > 0 ? sum / T(win.divisor) : T(0);
}

// Range [lo, hi) of output positions whose (undilated) window covers input
// coordinate i: o*s - p <= i < o*s - p + k.
STRIATE_HD inline void pool_covering_range(index_t i, index_t k, index_t s, index_t p,
                                           index_t out_size, index_t* lo, index_t* hi) {
  index_t a = i + p - k + 1;  // smallest o*s allowed
  index_t l = a <= 0 ? 0 : (a + s - 1) / s;
  index_t h = (i + p) / s + 1;
  if (i + p < 0) h = 0;
  *lo = l;
  *hi = h < out_size ? h : out_size;
}

}  // namespace striate
