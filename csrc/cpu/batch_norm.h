// batch_norm.h: training-mode batch normalisation on the CPU (see batch_norm.cpp).
// x is viewed as (N, C, S): channels on axis 1, S = the product of the
// spatial sizes (1 for (N, C) input). weight/bias may be null (no affine).
#pragma once
#include "common/macros.h"

namespace striate {

// y = (x - mean) * invstd * w + b with the batch statistics of each channel.
// Also writes mean, the unbiased variance (for the running statistics) and
// invstd = 1 / sqrt(biased variance + eps), all (C,).          y, mean, var, invstd: =
template <typename T>
void batch_norm_forward_cpu(T* y, T* mean, T* var_unbiased, T* invstd, const T* x, const T* w,
                            const T* b, index_t N, index_t C, index_t S, double eps);

// Gradients of the above for upstream g; any of dx, dw, db may be null
// (not wanted). mean and invstd are the forward's outputs.      dx, dw, db: =
template <typename T>
void batch_norm_backward_cpu(T* dx, T* dw, T* db, const T* g, const T* x, const T* w,
                             const T* mean, const T* invstd, index_t N, index_t C, index_t S);

}  // namespace striate
