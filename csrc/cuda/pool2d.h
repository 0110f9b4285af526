// pool2d.h (CUDA): launchers for the pooling kernels in pool2d.cu. Same
// geometry and per-cell rules as csrc/cpu/pool2d.h; pointers are device
// pointers and each launch goes on `stream`. `flags` are int64 device
// words set to INT64_MAX by the caller (see index_flag.cuh).
#pragma once
#include <cuda_runtime.h>

#include "common/pool_index.h"

namespace striate {

// y, indices (planes, Ho, Wo) = max over each window of x (planes, H, W)   y, indices: =
template <typename T>
void max_pool2d_forward_cuda(T* y, int64_t* indices, const T* x, index_t planes,
                             const Pool2dGeometry& g, cudaStream_t stream);

// dx (planes, H, W) = sum of dy at indices, as a gather over the windows
// that cover each cell (deterministic, the CPU's order). flags[0] receives
// the first position whose index is outside [0, H*W), flags[1] the first
// whose index lies outside the span of its own window. The caller reads
// both: flags[0] set means an error (dx must be discarded); flags[1] set
// means the indices do not come from windows of this geometry, so the
// gather missed them and dx must be recomputed with
// max_pool2d_backward_ordered_cuda.                                     dx: =
template <typename T>
void max_pool2d_backward_cuda(T* dx, int64_t* flags, const T* dy, const int64_t* indices,
                              index_t planes, const Pool2dGeometry& g, cudaStream_t stream);

// The same sum for indices from any geometry (only g.H, g.W, g.Ho, g.Wo are
// used): one warp per plane adds each dy onto dx[index] in the CPU's order
// (flat output position ascending), so the result is deterministic and
// bit-identical to the CPU. flag receives the first out-of-plane position. dx: =
template <typename T>
void max_pool2d_backward_ordered_cuda(T* dx, int64_t* flag, const T* dy, const int64_t* indices,
                                      index_t planes, const Pool2dGeometry& g,
                                      cudaStream_t stream);

// divisor_override <= 0 means none.                                       y: =
template <typename T>
void avg_pool2d_forward_cuda(T* y, const T* x, index_t planes, const Pool2dGeometry& g,
                             bool count_include_pad, index_t divisor_override,
                             cudaStream_t stream);

// dx = gather of dy / divisor over the windows covering each cell.       dx: =
template <typename T>
void avg_pool2d_backward_cuda(T* dx, const T* dy, index_t planes, const Pool2dGeometry& g,
                              bool count_include_pad, index_t divisor_override,
                              cudaStream_t stream);

}  // namespace striate
