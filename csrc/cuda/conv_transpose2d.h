// conv_transpose2d.h (CUDA): transposed convolution launchers (see
// conv_transpose2d.cu). The Conv2dGeometry describes the convolution
// y -> x, as in csrc/cpu/conv_transpose2d.h.
#pragma once
#include <cuda_runtime.h>

#include "cuda/conv2d.h"

namespace striate {

// y (N, C, H, W) = conv^T(x (N, K, Ho, Wo), w (K, C/groups, kh, kw)) + b   y: =
template <typename T>
void conv_transpose2d_forward_cuda(T* y, const T* x, const T* w, const T* b,
                                   const Conv2dGeometry& g, bool allow_tf32, cudaStream_t stream);

// Elements of workspace conv_transpose2d_backward_cuda needs for dw (0: none).
template <typename T>
index_t conv_transpose2d_backward_workspace_cuda(const Conv2dGeometry& g);

// Gradients; any of dx, dw, db may be null (not needed).                 all: =
template <typename T>
void conv_transpose2d_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                    const Conv2dGeometry& g, T* workspace,
                                    index_t workspace_count, bool allow_tf32, cudaStream_t stream);

}  // namespace striate
