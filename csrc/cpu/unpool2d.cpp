// unpool2d.cpp: max-unpooling (the decoder half of SegNet) on the CPU.
// Indices are flat positions within each output plane (PyTorch's max_pool2d
// encoding). Each plane's indices are checked before that plane is written
// (one pass over memory: the check leaves them in cache for the scatter), so
// a bad index is never used to write; the first bad one is reported and the
// caller discards the output. The backward checks each index as it gathers.
#include "unpool2d.h"

#include <algorithm>

#include "gemm.h"
#include "stream.h"

namespace striate {

template <typename T>
index_t max_unpool2d_forward_cpu(T* y, const T* x, const int64_t* indices, index_t planes,
                                 index_t in_plane, index_t out_plane) {
  const index_t count = planes * in_plane;
  index_t first_bad = count;
  // A large output whose planes fit a thread's L2: each plane built there, then streamed out
  // (stream.h: no read of the output's lines before they are written).
  const bool stream = planes * out_plane * (index_t)sizeof(T) >= kStreamBytes &&
                      out_plane * (index_t)sizeof(T) <= (index_t(1) << 20);
#pragma omp parallel reduction(min : first_bad)
  {
#pragma omp for schedule(static)
  for (index_t p = 0; p < planes; ++p) {
    const int64_t* ip = indices + p * in_plane;
    // Negative indices compare as huge unsigned values.
    const uint64_t limit = static_cast<uint64_t>(out_plane);
    index_t outside = 0;
#pragma omp simd reduction(+ : outside)
    for (index_t i = 0; i < in_plane; ++i) outside += static_cast<uint64_t>(ip[i]) >= limit;
    if (outside) {
      for (index_t i = 0; i < in_plane; ++i)
        if (ip[i] < 0 || ip[i] >= out_plane) {
          first_bad = std::min(first_bad, p * in_plane + i);
          break;
        }
      continue;
    }
    T* yp = stream ? static_cast<T*>(thread_scratch(2, sizeof(T) * out_plane)) : y + p * out_plane;
    std::fill(yp, yp + out_plane, T(0));
    const T* xp = x + p * in_plane;
    for (index_t i = 0; i < in_plane; ++i) yp[ip[i]] = xp[i];
    if (stream) stream_copy(y + p * out_plane, yp, out_plane);
  }
  if (stream) stream_fence();
  }
  return first_bad == count ? -1 : first_bad;
}

template <typename T>
index_t max_unpool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                  index_t in_plane, index_t out_plane) {
  // One pass: gather and check together. A bad index is never dereferenced
  // (its dx is 0) and is reported; the caller then discards dx.
  const index_t count = planes * in_plane;
  index_t first_bad = count;
#pragma omp parallel for schedule(static) reduction(min : first_bad)
  for (index_t p = 0; p < planes; ++p) {
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * in_plane;
    T* dxp = dx + p * in_plane;
    for (index_t i = 0; i < in_plane; ++i) {
      const int64_t j = ip[i];
      const bool ok = j >= 0 && j < out_plane;
      dxp[i] = ok ? dyp[ok ? j : 0] : T(0);
      if (!ok) first_bad = std::min(first_bad, p * in_plane + i);
    }
  }
  return first_bad == count ? -1 : first_bad;
}

#define STRIATE_INSTANTIATE_UNPOOL2D(T)                                                 \
  template index_t max_unpool2d_forward_cpu<T>(T*, const T*, const int64_t*, index_t,  \
                                               index_t, index_t);                      \
  template index_t max_unpool2d_backward_cpu<T>(T*, const T*, const int64_t*, index_t, \
                                                index_t, index_t);
STRIATE_INSTANTIATE_UNPOOL2D(float)
STRIATE_INSTANTIATE_UNPOOL2D(double)

}  // namespace striate
