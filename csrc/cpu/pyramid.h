// pyramid.h: Gaussian pyramid kernels, OpenCV's pyrDown / pyrUp and their
// adjoints (see pyramid.cpp and common/pyramid_taps.h).
#pragma once
#include "common/macros.h"

namespace striate {

// y (planes, (H+1)/2, (W+1)/2) = pyrDown(x (planes, H, W))           y: =
template <typename T>
void pyr_down_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W);

// dx (planes, H, W) = pyrDown^T(dy)                                 dx: =
template <typename T>
void pyr_down_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W);

// y (planes, Ho, Wo) = pyrUp(x (planes, H, W))                        y: =
template <typename T>
void pyr_up_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W, index_t Ho,
                        index_t Wo);

// dx (planes, H, W) = pyrUp^T(dy (planes, Ho, Wo))                  dx: =
template <typename T>
void pyr_up_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t Ho,
                         index_t Wo);

}  // namespace striate
