// pad2d.h: 2-D padding kernels (see pad2d.cpp).
#pragma once
#include "common/macros.h"

namespace striate {

// y (planes, H+pt+pb, W+pl+pr) = pad(x (planes, H, W))                 y: =
template <typename T>
void pad2d_forward_cpu(T* y, const T* x, index_t planes, index_t H, index_t W, index_t pl,
                       index_t pr, index_t pt, index_t pb, int mode, T value);

// dx = adjoint of pad2d applied to dy                                   dx: =
template <typename T>
void pad2d_backward_cpu(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t pl,
                        index_t pr, index_t pt, index_t pb, int mode);

}  // namespace striate
