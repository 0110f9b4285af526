// pyramid.cpp: pyrDown / pyrUp and their adjoints on the CPU.
// All four are separable linear maps y = Av * x * Ah^T per plane, where each
// 1-D operator A is a short list of (source, weight) taps per output index
// (common/pyramid_plan.h; the adjoints use the transposed lists).
// One routine applies any such pair: for each output row it combines the
// needed input rows into a temporary row (vertical pass, vectorised), then
// filters that row horizontally. pyrDown and pyrUp have unrolled interior
// loops for the horizontal pass; the borders always use the tap lists.
#include "pyramid.h"

#include <algorithm>

#include "common/pyramid_plan.h"
#include "gemm.h"

namespace striate {

namespace {

// Horizontal pass for one row: out[c] = sum of taps over tmp.
template <typename T>
void filter_row(T* out, const T* tmp, const Taps& cols) {
  const index_t Wo = cols.size();
  index_t lo = 0, hi = 0;  // interior [lo, hi) handled by the unrolled loops
  if (cols.kind == TAPS_DOWN) {
    // out[c] reads tmp[2c-2 .. 2c+2]: inside for 1 <= c <= (n_in-3)/2.
    lo = 1;
    hi = std::max<index_t>(lo, std::min<index_t>(Wo, (cols.n_in - 1) / 2));
    for (index_t c = lo; c < hi; ++c) {
      const T* s = tmp + 2 * c - 2;
      out[c] = (s[0] + s[4] + T(4) * (s[1] + s[3]) + T(6) * s[2]) * T(1.0 / 16.0);
    }
  } else if (cols.kind == TAPS_UP) {
    // out[2t] = (x[t-1] + 6x[t] + x[t+1])/8, out[2t+1] = (x[t] + x[t+1])/2
    const index_t n = cols.n_in;
    lo = 2;
    hi = std::max<index_t>(lo, std::min<index_t>(2 * (n - 1), Wo & ~(index_t)1));
    for (index_t t = 1; 2 * t < hi; ++t) {
      out[2 * t] = (tmp[t - 1] + tmp[t + 1] + T(6) * tmp[t]) * T(1.0 / 8.0);
      out[2 * t + 1] = (tmp[t] + tmp[t + 1]) * T(0.5);
    }
  }
  auto generic = [&](index_t c) {
    T s = T(0);
    for (index_t e = cols.ptr[c]; e < cols.ptr[c + 1]; ++e) s += T(cols.wt[e]) * tmp[cols.src[e]];
    out[c] = s;
  };
  for (index_t c = 0; c < std::min(lo, Wo); ++c) generic(c);
  for (index_t c = std::max(hi, lo); c < Wo; ++c) generic(c);
}

// y (planes, rows.size(), cols.size()) = rows-operator * x (planes, H, W) * cols-operator^T
template <typename T>
void separable_apply(T* y, const T* x, index_t planes, index_t H, index_t W, const Taps& rows,
                     const Taps& cols) {
  const index_t Ho = rows.size(), Wo = cols.size();
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t r = 0; r < Ho; ++r) {
      T* tmp = static_cast<T*>(thread_scratch(2, sizeof(T) * (W + 1)));
      const T* plane = x + p * H * W;
      const index_t e0 = rows.ptr[r], e1 = rows.ptr[r + 1];
      if (e0 == e1) {
        std::fill(tmp, tmp + W, T(0));
      } else {
        const T w0 = T(rows.wt[e0]);
        const T* s0 = plane + rows.src[e0] * W;
        for (index_t w = 0; w < W; ++w) tmp[w] = w0 * s0[w];
        for (index_t e = e0 + 1; e < e1; ++e) {
          const T we = T(rows.wt[e]);
          const T* s = plane + rows.src[e] * W;
          for (index_t w = 0; w < W; ++w) tmp[w] += we * s[w];
        }
      }
      filter_row(y + (p * Ho + r) * Wo, tmp, cols);
    }
}

}  // namespace

template <typename T>
void pyr_down_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W) {
  separable_apply(y, x, planes, H, W, pyr_down_taps(H), pyr_down_taps(W));
}

template <typename T>
void pyr_down_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W) {
  separable_apply(dx, dy, planes, pyr_down_output_size(H), pyr_down_output_size(W),
                  pyr_down_adjoint_taps(H), pyr_down_adjoint_taps(W));
}

template <typename T>
void pyr_up_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W, index_t Ho,
                        index_t Wo) {
  separable_apply(y, x, planes, H, W, pyr_up_taps(H, Ho, true), pyr_up_taps(W, Wo, false));
}

template <typename T>
void pyr_up_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t Ho,
                         index_t Wo) {
  separable_apply(dx, dy, planes, Ho, Wo, pyr_up_adjoint_taps(H, Ho, true),
                  pyr_up_adjoint_taps(W, Wo, false));
}

#define STRIATE_INSTANTIATE_PYRAMID(T)                                                        \
  template void pyr_down_forward_cpu<T>(T*, const T*, index_t, index_t, index_t);             \
  template void pyr_down_backward_cpu<T>(T*, const T*, index_t, index_t, index_t);            \
  template void pyr_up_forward_cpu<T>(T*, const T*, index_t, index_t, index_t, index_t,       \
                                      index_t);                                               \
  template void pyr_up_backward_cpu<T>(T*, const T*, index_t, index_t, index_t, index_t, index_t);
STRIATE_INSTANTIATE_PYRAMID(float)
STRIATE_INSTANTIATE_PYRAMID(double)

}  // namespace striate
