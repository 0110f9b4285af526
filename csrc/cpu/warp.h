// warp.h: affine warping of image batches (see warp.cpp).
#pragma once
#include "common/macros.h"

namespace striate {

// y (N, C, Ho, Wo) = grid_sample(x (N, C, H, W), affine_grid(theta (N, 2, 3)))   y: =
template <typename T>
void warp_affine_forward_cpu(T* y, const T* x, const T* theta, index_t N, index_t C, index_t H,
                             index_t W, index_t Ho, index_t Wo, int mode, int padding,
                             bool align_corners);

}  // namespace striate
