// pad2d.h (CUDA): launchers for the padding kernels in pad2d.cu, same
// contracts as csrc/cpu/pad2d.h. Pointers are device pointers; the launch
// goes on `stream`.
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

// y (planes, H+pt+pb, W+pl+pr) = pad(x (planes, H, W))                 y: =
template <typename T>
void pad2d_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W, index_t pl,
                        index_t pr, index_t pt, index_t pb, int mode, T value,
                        cudaStream_t stream);

// dx = adjoint of pad2d applied to dy, as a gather (deterministic)      dx: =
template <typename T>
void pad2d_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t pl,
                         index_t pr, index_t pt, index_t pb, int mode, cudaStream_t stream);

}  // namespace striate
