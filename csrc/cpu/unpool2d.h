// unpool2d.h: max-unpooling kernels and index validation (see unpool2d.cpp).
#pragma once
#include "common/macros.h"

namespace striate {

// y (planes, Ho*Wo) = 0 except y[p][indices[p][i]] = x[p][i]. A plane is
// written only after all its indices are checked; returns the first bad
// position or -1, and then the caller must discard y.                    y: =
template <typename T>
index_t max_unpool2d_forward_cpu(T* y, const T* x, const int64_t* indices, index_t planes,
                                 index_t in_plane, index_t out_plane);

// dx[p][i] = dy[p][indices[p][i]] (a gather). Returns the first bad
// position or -1; a bad index is never dereferenced and the caller must
// then discard dx.                                                      dx: =
template <typename T>
index_t max_unpool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                  index_t in_plane, index_t out_plane);

}  // namespace striate
