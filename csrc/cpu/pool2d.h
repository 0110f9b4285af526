// pool2d.h: max / average pooling kernels (see pool2d.cpp). Sum pooling is
// average pooling with divisor_override = 1.
#pragma once
#include "common/pool_index.h"

namespace striate {

// y, indices (planes, Ho, Wo) = max over each window of x (planes, H, W)   y, indices: =
template <typename T>
void max_pool2d_forward_cpu(T* y, int64_t* indices, const T* x, index_t planes,
                            const Pool2dGeometry& g);

// dx (planes, H, W) = scatter-add of dy at indices. Returns the first
// position whose index lies outside [0, H*W), or -1. A bad index is never
// dereferenced; when one is reported the caller must discard dx.          dx: =
template <typename T>
index_t max_pool2d_backward_cpu(T* dx, const T* dy, const int64_t* indices, index_t planes,
                                const Pool2dGeometry& g);

// divisor_override <= 0 means none.                                       y: =
template <typename T>
void avg_pool2d_forward_cpu(T* y, const T* x, index_t planes, const Pool2dGeometry& g,
                            bool count_include_pad, index_t divisor_override);

template <typename T>
void avg_pool2d_backward_cpu(T* dx, const T* dy, index_t planes, const Pool2dGeometry& g,
                             bool count_include_pad, index_t divisor_override);

}  // namespace striate
