// dropout.h (CUDA): launchers for the Philox dropout kernels in dropout.cu.
// Pointers are device pointers; the launch goes on `stream`.
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

template <typename T>
void dropout_forward_cuda(T* y, uint8_t* mask, const T* x, index_t count, uint64_t seed,
                          uint64_t offset, uint64_t threshold, T scale, cudaStream_t stream);

template <typename T>
void dropout_backward_cuda(T* dx, const T* dy, const uint8_t* mask, index_t count, T scale,
                           cudaStream_t stream);

}  // namespace striate
