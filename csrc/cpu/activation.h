// activation.h: element-wise activations on the CPU, forward and backward (activation.cpp).
#pragma once
#include "common/macros.h"

namespace striate {

// y = x < 0 ? 0 : x (NaN stays NaN)                                 y: =
template <typename T>
void relu_forward_cpu(T* y, const T* x, index_t count);
// dx = y > 0 ? dy : 0, from the forward's output y                  dx: =
template <typename T>
void relu_backward_cpu(T* dx, const T* dy, const T* y, index_t count);

// y = x > 0 ? x : x * slope                                          y: =
template <typename T>
void leaky_relu_forward_cpu(T* y, const T* x, T slope, index_t count);
// dx = x > 0 ? dy : dy * slope                                       dx: =
template <typename T>
void leaky_relu_backward_cpu(T* dx, const T* dy, const T* x, T slope, index_t count);

}  // namespace striate
