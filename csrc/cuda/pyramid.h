// pyramid.h (CUDA): launchers for the Gaussian pyramid kernels in
// pyramid.cu, OpenCV's pyrDown / pyrUp and their adjoints. Pointers are
// device pointers; the launch goes on `stream`. Every output is written
// with `=` (no accumulation into existing gradients).
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

// One 1-D operator in CSR form on the device, as built by
// common/pyramid_plan.h: output o reads src[ptr[o] .. ptr[o+1]) with
// weights wt. The adjoints take the transposed lists (transpose_taps).
struct PyrTapsDevice {
  const index_t* ptr;
  const index_t* src;
  const double* wt;
};

// y (planes, (H+1)/2, (W+1)/2) = pyrDown(x (planes, H, W))
template <typename T>
void pyr_down_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W,
                           cudaStream_t stream);

// dx (planes, H, W) = pyrDown^T(dy (planes, (H+1)/2, (W+1)/2)); rows / cols
// are pyr_down_adjoint_taps(H) and (W) (common/pyramid_plan.h).
template <typename T>
void pyr_down_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W,
                            PyrTapsDevice rows, PyrTapsDevice cols, cudaStream_t stream);

// y (planes, Ho, Wo) = pyrUp(x (planes, H, W)); Ho, Wo: 2n, or 2n +- 1 (odd)
template <typename T>
void pyr_up_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W, index_t Ho,
                         index_t Wo, cudaStream_t stream);

// dx (planes, H, W) = pyrUp^T(dy (planes, Ho, Wo)); rows / cols are
// pyr_up_adjoint_taps(H, Ho, true) and (W, Wo, false).
template <typename T>
void pyr_up_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t Ho,
                          index_t Wo, PyrTapsDevice rows, PyrTapsDevice cols,
                          cudaStream_t stream);

}  // namespace striate
