// unpool2d.h (CUDA): launchers for the max-unpooling kernels in
// unpool2d.cu. Same results as csrc/cpu/unpool2d.h, including "the later
// input wins" for repeated indices. Pointers are device pointers, launches
// go on `stream`; `flag` is an int64 device word set to INT64_MAX by the
// caller (index_flag.cuh).
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

// Forward, pass 1: checks the indices and fills the winner workspace
// (planes * out_plane values of Wi; Wi = int32_t when in_plane fits, else
// int64_t) with which input position writes each output cell: the last one
// of the plane naming it. Its layout is private to unpool2d.cu (compact or
// cell-wise, chosen from the plane sizes). Bad indices are flagged and
// skipped. Nothing is written to y: the caller reads the flag back and runs
// pass 2 only when it is clear.                                 winner: =
template <typename Wi>
void max_unpool2d_winners_cuda(Wi* winner, int64_t* flag, const int64_t* indices, index_t planes,
                               index_t in_plane, index_t out_plane, cudaStream_t stream);

// Forward, pass 2: y (planes, out_plane) = x at each cell's winner, 0
// elsewhere; needs the workspace of pass 1 for the same sizes.          y: =
template <typename T, typename Wi>
void max_unpool2d_forward_cuda(T* y, const T* x, const Wi* winner, index_t planes,
                               index_t in_plane, index_t out_plane, cudaStream_t stream);

// dx[p][i] = dy[p][indices[p][i]] (a gather); a bad index gives 0 and is
// flagged, and the caller must then discard dx.                          dx: =
template <typename T>
void max_unpool2d_backward_cuda(T* dx, int64_t* flag, const T* dy, const int64_t* indices,
                                index_t planes, index_t in_plane, index_t out_plane,
                                cudaStream_t stream);

}  // namespace striate
