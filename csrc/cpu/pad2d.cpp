// pad2d.cpp: constant / reflect / replicate / circular padding of each
// (n, c) plane, and its adjoint. The coordinate rule is pad_source_index()
// in common/pad_index.h. Forward copies the interior of each row with one
// memcpy; the adjoint adds every output cell back onto the input cell it
// was read from (one thread per plane, so the sum order is fixed).
#include "pad2d.h"

#include <algorithm>
#include <cstring>

#include "common/pad_index.h"

namespace striate {

template <typename T>
void pad2d_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W, index_t pl,
                       index_t pr, index_t pt, index_t pb, int mode, T value) {
  const index_t Ho = H + pt + pb, Wo = W + pl + pr;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t p = 0; p < planes; ++p)
    for (index_t i = 0; i < Ho; ++i) {
      T* dst = y + (p * Ho + i) * Wo;
      const index_t h = pad_source_index(i - pt, H, mode);
      if (h < 0) {
        std::fill(dst, dst + Wo, value);
        continue;
      }
      const T* src = x + (p * H + h) * W;
      for (index_t j = 0; j < pl; ++j) {
        const index_t w = pad_source_index(j - pl, W, mode);
        dst[j] = w < 0 ? value : src[w];
      }
      std::memcpy(dst + pl, src, sizeof(T) * W);
      for (index_t j = pl + W; j < Wo; ++j) {
        const index_t w = pad_source_index(j - pl, W, mode);
        dst[j] = w < 0 ? value : src[w];
      }
    }
}

template <typename T>
void pad2d_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t pl,
                        index_t pr, index_t pt, index_t pb, int mode) {
  const index_t Ho = H + pt + pb, Wo = W + pl + pr;
#pragma omp parallel for schedule(static)
  for (index_t p = 0; p < planes; ++p) {
    T* plane = dx + p * H * W;
    std::fill(plane, plane + H * W, T(0));
    for (index_t i = 0; i < Ho; ++i) {
      const index_t h = pad_source_index(i - pt, H, mode);
      if (h < 0) continue;
      const T* src = dy + (p * Ho + i) * Wo;
      T* dst = plane + h * W;
      for (index_t j = 0; j < Wo; ++j) {
        const index_t w = pad_source_index(j - pl, W, mode);
        if (w >= 0) dst[w] += src[j];
      }
    }
  }
}

#define STRIATE_INSTANTIATE_PAD2D(T)                                                          \
  template void pad2d_forward_cpu<T>(T*, const T*, index_t, index_t, index_t, index_t, index_t, \
                                     index_t, index_t, int, T);                                 \
  template void pad2d_backward_cpu<T>(T*, const T*, index_t, index_t, index_t, index_t, index_t, \
                                      index_t, index_t, int);
STRIATE_INSTANTIATE_PAD2D(float)
STRIATE_INSTANTIATE_PAD2D(double)

}  // namespace striate
