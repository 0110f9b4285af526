// pool2d.cpp: max and average pooling on the CPU, forward and backward.
// Per-cell math (window bounds, tie and NaN rules, divisors) lives in
// common/pool_index.h and is shared with the CUDA kernels. Work is spread
// over (plane, output row) pairs. Max-pool backward scatters into each plane
// from one thread (fixed order, deterministic); average-pool backward is a
// gather over the windows covering each input cell.
#include "pool2d.h"

#include <algorithm>
#include <vector>

namespace striate {

template <typename T>
void max_pool2d_forward_cpu(T* y, int64_t* indices, const T* x, index_t planes,
                            const Pool2dGeometry& g) {
  const bool is_2x2 = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 &&
                      g.pw == 0 && g.dh == 1 && g.dw == 1;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t oh = 0; oh < g.Ho; ++oh) {
      const T* plane = x + p * g.H * g.W;
      T* yrow = y + (p * g.Ho + oh) * g.Wo;
      int64_t* irow = indices + (p * g.Ho + oh) * g.Wo;
      index_t ow = 0;
      if (is_2x2 && 2 * oh + 1 < g.H) {
        const index_t full = std::min(g.Wo, g.W / 2);  // windows entirely inside the row
        const T* r0 = plane + 2 * oh * g.W;
        const T* r1 = r0 + g.W;
        for (; ow < full; ++ow) {
          const index_t w = 2 * ow;
          max_pool_2x2_cell(r0[w], r0[w + 1], r1[w], r1[w + 1], 2 * oh, w, g.W, yrow + ow,
                            irow + ow);
        }
      }
      for (; ow < g.Wo; ++ow) max_pool_cell(plane, g, oh, ow, yrow + ow, irow + ow);
    }
}

template <typename T>
index_t max_pool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                const Pool2dGeometry& g) {
  // Each plane is zeroed and scattered by one thread; an index outside the
  // plane is never dereferenced, only reported (dx is then discarded).
  const index_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  index_t first_bad = planes * out_plane;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (index_t p = 0; p < planes; ++p) {
    T* dplane = dx + p * in_plane;
    std::fill(dplane, dplane + in_plane, T(0));
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * out_plane;
    for (index_t o = 0; o < out_plane; ++o) {
      const int64_t i = ip[o];
      if (i >= 0 && i < in_plane)
        dplane[i] += dyp[o];
      else
        first_bad = std::min(first_bad, p * out_plane + o);
    }
  }
  return first_bad == planes * out_plane ? -1 : first_bad;
}

template <typename T>
void avg_pool2d_forward_cpu(T* y, const T* x, index_t planes, const Pool2dGeometry& g,
                            bool count_include_pad, index_t divisor_override) {
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t oh = 0; oh < g.Ho; ++oh) {
      const T* plane = x + p * g.H * g.W;
      T* yrow = y + (p * g.Ho + oh) * g.Wo;
      for (index_t ow = 0; ow < g.Wo; ++ow)
        yrow[ow] = avg_pool_cell(plane, g, oh, ow, count_include_pad, divisor_override);
    }
}

template <typename T>
void avg_pool2d_backward_cpu(T* dx, const T* dy, index_t planes, const Pool2dGeometry& g,
                             bool count_include_pad, index_t divisor_override) {
  // Each input row h is owned by one thread: it adds dy / divisor of every
  // window that covers the row into it, window by window (deterministic).
  // The windows' column ranges and divisors are the same for every plane,
  // so they are tabulated once.
  std::vector<AvgWindow> win(g.Ho * g.Wo);
  for (index_t oh = 0; oh < g.Ho; ++oh)
    for (index_t ow = 0; ow < g.Wo; ++ow)
      win[oh * g.Wo + ow] = avg_pool_window(g, oh, ow, count_include_pad, divisor_override);
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t h = 0; h < g.H; ++h) {
      const T* dyp = dy + p * g.Ho * g.Wo;
      T* dxrow = dx + (p * g.H + h) * g.W;
      std::fill(dxrow, dxrow + g.W, T(0));
      index_t oh0, oh1;
      pool_covering_range(h, g.kh, g.sh, g.ph, g.Ho, &oh0, &oh1);
      for (index_t oh = oh0; oh < oh1; ++oh)
        for (index_t ow = 0; ow < g.Wo; ++ow) {
          const AvgWindow& w = win[oh * g.Wo + ow];
          if (w.divisor <= 0) continue;
          const T v = dyp[oh * g.Wo + ow] / T(w.divisor);
          for (index_t c = w.w0; c < w.w1; ++c) dxrow[c] += v;
        }
    }
}

#define STRIATE_INSTANTIATE_POOL2D(T)                                                       \
  template void max_pool2d_forward_cpu<T>(T*, int64_t*, const T*, index_t,                  \
                                          const Pool2dGeometry&);                           \
  template index_t max_pool2d_backward_cpu<T>(T*, const T*, const int64_t*, index_t,        \
                                              const Pool2dGeometry&);                       \
  template void avg_pool2d_forward_cpu<T>(T*, const T*, index_t, const Pool2dGeometry&, bool, \
                                          index_t);                                         \
  template void avg_pool2d_backward_cpu<T>(T*, const T*, index_t, const Pool2dGeometry&, bool, \
                                           index_t);
STRIATE_INSTANTIATE_POOL2D(float)
STRIATE_INSTANTIATE_POOL2D(double)

}  // namespace striate
