// unpool2d.cpp: max-unpooling (the decoder half of SegNet) on the CPU.
// Indices are flat positions within each output plane (PyTorch's max_pool2d
// encoding). They are all validated first, so a bad index writes nothing.
// When two inputs name the same cell, the later one (in flat order) wins,
// deterministically, because each plane is written by one thread.
#include "unpool2d.h"

#include <algorithm>

namespace striate {

index_t first_bad_index_cpu(const int64_t* indices, index_t count, index_t limit) {
  index_t first = count;
#pragma omp parallel for reduction(min : first) schedule(static)
  for (index_t i = 0; i < count; ++i)
    if (indices[i] < 0 || indices[i] >= limit) first = std::min(first, i);
  return first == count ? -1 : first;
}

template <typename T>
index_t max_unpool2d_forward_cpu(T* y, const T* x, const int64_t* indices, index_t planes,
                                 index_t in_plane, index_t out_plane) {
  const index_t bad = first_bad_index_cpu(indices, planes * in_plane, out_plane);
  if (bad >= 0) return bad;
#pragma omp parallel for schedule(static)
  for (index_t p = 0; p < planes; ++p) {
    T* yp = y + p * out_plane;
    std::fill(yp, yp + out_plane, T(0));
    const T* xp = x + p * in_plane;
    const int64_t* ip = indices + p * in_plane;
    for (index_t i = 0; i < in_plane; ++i) yp[ip[i]] = xp[i];
  }
  return -1;
}

template <typename T>
index_t max_unpool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                  index_t in_plane, index_t out_plane) {
  const index_t bad = first_bad_index_cpu(indices, planes * in_plane, out_plane);
  if (bad >= 0) return bad;
#pragma omp parallel for schedule(static)
  for (index_t p = 0; p < planes; ++p) {
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * in_plane;
    T* dxp = dx + p * in_plane;
    for (index_t i = 0; i < in_plane; ++i) dxp[i] = dyp[ip[i]];
  }
  return -1;
}

#define STRIATE_INSTANTIATE_UNPOOL2D(T)                                                 \
  template index_t max_unpool2d_forward_cpu<T>(T*, const T*, const int64_t*, index_t,  \
                                               index_t, index_t);                      \
  template index_t max_unpool2d_backward_cpu<T>(T*, const T*, const int64_t*, index_t, \
                                                index_t, index_t);
STRIATE_INSTANTIATE_UNPOOL2D(float)
STRIATE_INSTANTIATE_UNPOOL2D(double)

}  // namespace striate
