// conv2d.h (CUDA): launchers for the implicit-GEMM convolution kernels in
// conv2d.cu, the GPU counterparts of csrc/cpu/conv2d.h with the same
// Conv2dGeometry. Pointers are device pointers; every launch goes on
// `stream`; every output is written with `=` (never accumulated into).
// Problems whose GEMM extents (N*Ho*Wo, N*H*W, C/groups*kh*kw, ...) reach
// 2^31 are refused with std::invalid_argument. allow_tf32 lets fp32 GEMMs
// use the TF32 tensor cores (compute capability 8.0+; ignored otherwise).
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"
#include "cpu/conv2d.h"

namespace striate {

// y = conv(x, w) + b (b may be null).
template <typename T>
void conv2d_forward_cuda(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g,
                         bool allow_tf32, cudaStream_t stream);

// dx = conv^T(dy, w) + b, b per input channel (C,) or null (conv2d's
// backward has none; conv_transpose2d's forward uses it).
template <typename T>
void conv2d_backward_data_cuda(T* dx, const T* dy, const T* w, const T* b,
                               const Conv2dGeometry& g, bool allow_tf32, cudaStream_t stream);

// Elements of workspace conv2d_backward_weight_cuda needs (0: none).
template <typename T>
index_t conv2d_backward_weight_workspace_cuda(const Conv2dGeometry& g);

// dw = sum over n and output positions of dy (x) im2col(x). The reduction
// may be split over blocks, whose partial sums go through `workspace`
// (conv2d_backward_weight_workspace_cuda elements) and are added in a fixed
// order: deterministic, no atomics.
template <typename T>
void conv2d_backward_weight_cuda(T* dw, const T* dy, const T* x, const Conv2dGeometry& g,
                                 T* workspace, index_t workspace_count, bool allow_tf32,
                                 cudaStream_t stream);

// db[k] = sum of dy (N, K, P) over n and p; deterministic tree reduction.
template <typename T>
void conv2d_backward_bias_cuda(T* db, const T* dy, index_t N, index_t K, index_t P,
                               cudaStream_t stream);

// The three gradients; any of dx, dw, db may be null (not needed).
template <typename T>
void conv2d_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                          const Conv2dGeometry& g, T* workspace, index_t workspace_count,
                          bool allow_tf32, cudaStream_t stream);

}  // namespace striate
