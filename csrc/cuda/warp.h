// warp.h (CUDA): launcher for the affine warp kernel in warp.cu. Pointers
// are device pointers; the launch goes on `stream`.
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

// y (N, C, Ho, Wo) = grid_sample(x (N, C, H, W), affine_grid(theta (N, 2, 3)))   y: =
// mode: WarpMode, padding: WarpPadding (common/warp_coords.h).
template <typename T>
void warp_affine_forward_cuda(T* y, const T* x, const T* theta, index_t N, index_t C, index_t H,
                              index_t W, index_t Ho, index_t Wo, int mode, int padding,
                              bool align_corners, cudaStream_t stream);

}  // namespace striate
