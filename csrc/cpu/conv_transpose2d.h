// conv_transpose2d.h: transposed convolution kernels (see conv_transpose2d.cpp).
#pragma once
#include "conv2d.h"

namespace striate {

// y (N, C, H, W) = conv^T(x (N, K, Ho, Wo), w (K, C/groups, kh, kw)) + b   y: =
template <typename T>
void conv_transpose2d_forward_cpu(T* y, const T* x, const T* w, const T* b,
                                  const Conv2dGeometry& g);

// Gradients; any of dx, dw, db may be null (not needed).               all: =
template <typename T>
void conv_transpose2d_backward_cpu(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                   const Conv2dGeometry& g);

}  // namespace striate
