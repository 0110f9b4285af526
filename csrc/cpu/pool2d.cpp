// pool2d.cpp: max and average pooling on the CPU, forward and backward.
// Per-cell math (window bounds, tie and NaN rules, divisors) lives in
// common/pool_index.h and is shared with the CUDA kernels. Work is spread
// over (plane, output row) pairs. Max-pool backward scatters into each plane
// from one thread (fixed order, deterministic); average-pool backward is a
// gather over the windows covering each input cell.
#include "pool2d.h"

#include "common/simd.h"
#include "gemm.h"
#include "stream.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

namespace striate {

// The windows of output row oh that lie wholly inside the plane (any kernel, stride, dilation:
// ResNet's 3x3 stride-2 stem pooling), max_pool_cell's rule with selects instead of branches
// (random data mispredicts a branchy window every few taps, and the clipping costs four
// divisions a window): taps outer, a chunk of windows inner, so that every tap's loop
// vectorises; the winner kept as its offset in the window. When the row has at least one
// vector of such windows, the windows before them go through max_pool_cell here and the first
// window after them is returned; otherwise nothing is written and 0 is returned.
template <typename T>
index_t max_pool_interior_row(T* yrow, int64_t* irow, const T* plane, const Pool2dGeometry& g, index_t oh) {
  constexpr index_t L = kSimdBytes / sizeof(T), kChunk = 256;
  const index_t h0 = oh * g.sh - g.ph, span_h = (g.kh - 1) * g.dh, span_w = (g.kw - 1) * g.dw;
  // the first window with w0 >= 0, and one past the last with w0 + span_w < W
  const index_t lo = std::min(g.Wo, (g.pw + g.sw - 1) / g.sw);
  const index_t hi = g.W - 1 - span_w + g.pw < 0 ? 0 : std::min(g.Wo, (g.W - 1 - span_w + g.pw) / g.sw + 1);
  if (h0 < 0 || h0 + span_h >= g.H || hi - lo < L || g.H * g.W > INT32_MAX) return 0;
  for (index_t ow = 0; ow < lo; ++ow) max_pool_cell(plane, g, oh, ow, yrow + ow, irow + ow);
  T best[kChunk];
  int32_t at[kChunk];
  for (index_t i0 = lo; i0 < hi;) {
    index_t n = std::min(kChunk, hi - i0);
    if (n < L)
      i0 = hi - L, n = L;  // overlaps the chunk before (whole vectors only: see the 2x2 path)
    else
      n -= n % L;
    const T* first = plane + h0 * g.W + i0 * g.sw - g.pw;  // window i0's first tap
#pragma omp simd
    for (index_t i = 0; i < n; ++i) {
      best[i] = first[i * g.sw];
      at[i] = 0;
    }
    for (index_t a = 0; a < g.kh; ++a)
      for (index_t b = a == 0 ? 1 : 0; b < g.kw; ++b) {
        const int32_t off = (int32_t)(a * g.dh * g.W + b * g.dw);
        const T* src = first + off;
#pragma omp simd
        for (index_t i = 0; i < n; ++i) {
          const T v = src[i * g.sw];
          const bool take = max_pool_takes(v, best[i]);
          best[i] = take ? v : best[i];
          at[i] = take ? off : at[i];
        }
      }
    const int64_t base = h0 * g.W + i0 * g.sw - g.pw;
    for (index_t i = 0; i < n; ++i) {
      yrow[i0 + i] = best[i];
      irow[i0 + i] = base + (int64_t)i * g.sw + at[i];
    }
    i0 += n;
  }
  return hi;
}

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
        // max_pool_2x2_cell's rule written with selects, not branches (random data mispredicts
        // every other comparison): the values and a 2-bit winner code per window first, in
        // chunks that vectorise, then the flat indices from the codes. Every chunk is a whole
        // number of vectors, so that the loop's scalar remainder (where GCC turns the selects
        // back into branches: rows of 28 and 14 windows ran at a third and a seventh of the
        // speed of rows of 32) never runs: the last chunk of a row overlaps the one before, and
        // a row shorter than one vector goes through a zero-padded copy.
        constexpr index_t L = kSimdBytes / sizeof(T);
        const bool narrow = full < L;
        T p0[2 * L], p1[2 * L], ybuf[L];
        int64_t ibuf[L];
        if (narrow) {  // zeroed only here: not on every row
          std::fill(std::copy(r0, r0 + 2 * full, p0), p0 + 2 * L, T(0));
          std::fill(std::copy(r1, r1 + 2 * full, p1), p1 + 2 * L, T(0));
        }
        const T* __restrict s0 = narrow ? p0 : r0;
        const T* __restrict s1 = narrow ? p1 : r1;
        T* __restrict yd = narrow ? ybuf : yrow;
        int64_t* __restrict id = narrow ? ibuf : irow;
        const index_t span = narrow ? L : full;
        const int64_t row_index = 2 * oh * g.W;
        constexpr index_t kChunk = 256;
        for (index_t i0 = 0; i0 < span;) {
          index_t n = std::min(kChunk, span - i0);
          if (n < L)
            i0 = span - L, n = L;  // overlaps the chunk before
          else
            n -= n % L;
          int32_t code[kChunk];
#pragma omp simd
          for (index_t i = 0; i < n; ++i) {
            const index_t w = 2 * (i0 + i);
            const T a = s0[w], b = s0[w + 1], c = s1[w], d = s1[w + 1];
            T best = a;
            int32_t at = 0;
            const bool tb = max_pool_takes(b, best);
            best = tb ? b : best;
            at = tb ? 1 : at;
            const bool tc = max_pool_takes(c, best);
            best = tc ? c : best;
            at = tc ? 2 : at;
            const bool td = max_pool_takes(d, best);
            best = td ? d : best;
            at = td ? 3 : at;
            yd[i0 + i] = best;
            code[i] = at;
          }
          for (index_t i = 0; i < n; ++i)
            id[i0 + i] = row_index + 2 * (i0 + i) + (code[i] & 1) + (code[i] >> 1) * g.W;
          i0 += n;
        }
        if (narrow) {
          std::copy(ybuf, ybuf + full, yrow);
          std::copy(ibuf, ibuf + full, irow);
        }
        ow = full;
      }
      if (!is_2x2) ow = max_pool_interior_row(yrow, irow, plane, g, oh);
      for (; ow < g.Wo; ++ow) max_pool_cell(plane, g, oh, ow, yrow + ow, irow + ow);
    }
}

template <typename T>
index_t max_pool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                const Pool2dGeometry& g) {
  // Each plane is zeroed and scattered by one thread; an index outside the
  // plane is never dereferenced, only reported (dx is then discarded).
  const index_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  // 2x2 windows that tile the plane exactly: each window writes its four cells once (the value
  // at its index, zeros elsewhere) when every index of the plane lies in its own window, as the
  // forward's do; any other plane is zeroed and scattered below.
  const bool tiled = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 &&
                     g.dh == 1 && g.dw == 1 && g.H == 2 * g.Ho && g.W == 2 * g.Wo;
  index_t first_bad = planes * out_plane;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (index_t p = 0; p < planes; ++p) {
    T* dplane = dx + p * in_plane;
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * out_plane;
    if (tiled) {
      int outside = 0;
      for (index_t oh = 0; oh < g.Ho && !outside; ++oh) {
        T* r0 = dplane + 2 * oh * g.W;
        T* r1 = r0 + g.W;
        const int64_t* irow = ip + oh * g.Wo;
        const T* dyrow = dyp + oh * g.Wo;
        const int64_t base = 2 * oh * g.W, W = g.W;
#pragma omp simd reduction(| : outside)
        for (index_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t d = irow[ow] - (base + 2 * ow);
          const T v = T(0) + dyrow[ow];  // as the scatter's 0 + dy
          outside |= (d != 0) & (d != 1) & (d != W) & (d != W + 1);
          r0[2 * ow] = d == 0 ? v : T(0);
          r0[2 * ow + 1] = d == 1 ? v : T(0);
          r1[2 * ow] = d == W ? v : T(0);
          r1[2 * ow + 1] = d == W + 1 ? v : T(0);
        }
      }
      if (!outside) continue;
    }
    std::fill(dplane, dplane + in_plane, T(0));
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
  const bool is_2x2 = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 &&
                      g.pw == 0 && g.dh == 1 && g.dw == 1;
  const T divisor = T(divisor_override > 0 ? divisor_override : 4);
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t oh = 0; oh < g.Ho; ++oh) {
      const T* plane = x + p * g.H * g.W;
      T* yrow = y + (p * g.Ho + oh) * g.Wo;
      index_t ow = 0;
      if (is_2x2 && 2 * oh + 1 < g.H) {
        // Whole 2x2 windows: avg_pool_cell's sum in its order, over its divisor.
        const index_t full = std::min(g.Wo, g.W / 2);
        const T* r0 = plane + 2 * oh * g.W;
        const T* r1 = r0 + g.W;
#pragma omp simd
        for (index_t i = 0; i < full; ++i)
          yrow[i] = (T(0) + r0[2 * i] + r0[2 * i + 1] + r1[2 * i] + r1[2 * i + 1]) / divisor;
        ow = full;
      }
      for (; ow < g.Wo; ++ow)
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
  const index_t whole = divisor_override > 0 ? divisor_override : 4;  // a whole 2x2 window's divisor
  const T whole_divisor = T(whole), whole_scale = (whole & (whole - 1)) == 0 ? T(1) / T(whole) : T(0);
  // a large output, in pairs of rows that fit L2: built there and streamed out (stream.h)
  const bool stream = planes * g.H * g.W * (index_t)sizeof(T) >= kStreamBytes &&
                      2 * g.W * (index_t)sizeof(T) <= (index_t(1) << 20);
#pragma omp parallel
  {
#pragma omp for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t h = 0; h < g.H; ++h) {
      const T* dyp = dy + p * g.Ho * g.Wo;
      T* dxrow = dx + (p * g.H + h) * g.W;
      if (g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0) {
        // Each cell lies in at most one window, (h / 2, w / 2): one value per window written
        // to its (up to) four cells (0 + v, as the general loop adds v to a zero). A window
        // row's even input row writes both of its rows (its odd row is skipped: one pass over
        // dy, and each value computed once); the cells the whole windows write are written
        // once (no zeroing pass before them).
        const index_t oh = h / 2;
        if (oh >= g.Ho) {
          std::fill(dxrow, dxrow + g.W, T(0));
          continue;
        }
        if (h % 2 == 1) continue;  // written with row h - 1
        const index_t nrows = h + 1 < g.H ? 2 : 1;
        const AvgWindow* wrow = win.data() + oh * g.Wo;
        const T* dyrow = dyp + oh * g.Wo;
        index_t ow = 0;
        if (nrows == 2) {  // whole windows: the same divisor, a loop that vectorises
          const index_t full = std::min(g.Wo, g.W / 2);
          // both rows contiguous and whole in a large output: built in L1, then streamed out
          const bool streamed = stream && 2 * full == g.W;
          T* out = streamed ? static_cast<T*>(thread_scratch(2, sizeof(T) * 2 * g.W)) : dxrow;
          T* next = out + g.W;
#pragma omp simd
          for (index_t i = 0; i < full; ++i) {
            // a power-of-two divisor as its reciprocal: the product is the quotient, exactly
            const T v = T(0) + (whole_scale > 0 ? dyrow[i] * whole_scale : dyrow[i] / whole_divisor);
            out[2 * i] = v;
            out[2 * i + 1] = v;
            next[2 * i] = v;
            next[2 * i + 1] = v;
          }
          if (streamed) {
            stream_copy(dxrow, out, 2 * g.W);
            continue;
          }
          ow = full;
        }
        for (index_t r = 0; r < nrows; ++r) {
          T* row = dxrow + r * g.W;
          std::fill(row + 2 * ow, row + g.W, T(0));  // the rest: partial windows, uncovered cells
          for (index_t o = ow; o < g.Wo; ++o) {
            const AvgWindow& wi = wrow[o];
            if (wi.divisor <= 0 || h + r >= wi.h1) continue;
            const T v = T(0) + dyrow[o] / T(wi.divisor);
            for (index_t w = wi.w0; w < wi.w1; ++w) row[w] = v;
          }
        }
        continue;
      }
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
  stream_fence();
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
