// unpool2d.cu: max-unpooling on the GPU, forward and backward, never
// reading or writing outside the planes whatever the indices.
//
// Forward, in two passes so that a bad index writes nothing to y:
//  1. winners: each input position i of a plane checks its index, flags it
//     if it lies outside the output plane (index_flag.cuh), and otherwise
//     records i in the winner workspace of the cell it names with an atomic
//     maximum. The atomics are on positions, not data: the maximum does not
//     depend on the order in which they land, so the cell keeps the later
//     input, the CPU kernel's rule, deterministically.
//  2. (launched by striate.ops only when the flag reads back clear) each
//     output cell gathers x at its winner, or 0.
// Backward: a gather dx[i] = dy[index[i]] that checks each index as it
// goes (0 and a flag for a bad one).
// Work is laid out with row_grid.cuh, one row per plane.
#include "check.cuh"
#include "index_flag.cuh"
#include "row_grid.cuh"
#include "unpool2d.h"

namespace striate {

namespace {

__device__ inline void atomic_max_position(int32_t* a, index_t v) { atomicMax(a, (int32_t)v); }
__device__ inline void atomic_max_position(int64_t* a, index_t v) {
  atomicMax(reinterpret_cast<long long*>(a), (long long)v);
}

}  // namespace

// (planes rows, in_plane)
template <typename Wi>
__global__ void max_unpool2d_winners_kernel(Wi* winner, int64_t* flag,
                                            const int64_t* __restrict__ indices, index_t planes,
                                            index_t in_plane, index_t out_plane) {
  for (index_t p = grid_row_begin(); p < planes; p += grid_row_step())
    for (index_t i = grid_col_begin(); i < in_plane; i += grid_col_step()) {
      const index_t pos = p * in_plane + i;
      const int64_t j = indices[pos];
      if (j < 0 || j >= out_plane)
        flag_bad_position(flag, pos);
      else
        atomic_max_position(winner + p * out_plane + j, i);
    }
}

// (planes rows, out_plane)
template <typename T, typename Wi>
__global__ void max_unpool2d_forward_kernel(T* __restrict__ y, const T* __restrict__ x,
                                            const Wi* __restrict__ winner, index_t planes,
                                            index_t in_plane, index_t out_plane) {
  for (index_t p = grid_row_begin(); p < planes; p += grid_row_step())
    for (index_t c = grid_col_begin(); c < out_plane; c += grid_col_step()) {
      const index_t pos = p * out_plane + c, i = winner[pos];
      y[pos] = i >= 0 && i < in_plane ? x[p * in_plane + i] : T(0);
    }
}

// (planes rows, in_plane)
template <typename T>
__global__ void max_unpool2d_backward_kernel(T* __restrict__ dx, int64_t* flag,
                                             const T* __restrict__ dy,
                                             const int64_t* __restrict__ indices, index_t planes,
                                             index_t in_plane, index_t out_plane) {
  for (index_t p = grid_row_begin(); p < planes; p += grid_row_step())
    for (index_t i = grid_col_begin(); i < in_plane; i += grid_col_step()) {
      const index_t pos = p * in_plane + i;
      const int64_t j = indices[pos];
      const bool ok = j >= 0 && j < out_plane;
      if (!ok) flag_bad_position(flag, pos);
      dx[pos] = ok ? dy[p * out_plane + j] : T(0);
    }
}

template <typename Wi>
void max_unpool2d_winners_cuda(Wi* winner, int64_t* flag, const int64_t* indices, index_t planes,
                               index_t in_plane, index_t out_plane, cudaStream_t stream) {
  if (planes * out_plane == 0) return;
  STRIATE_CUDA_CHECK(
      cudaMemsetAsync(winner, 0xff, sizeof(Wi) * (size_t)(planes * out_plane), stream));  // -1
  if (in_plane == 0) return;
  const RowGrid g = row_grid(planes, in_plane);
  max_unpool2d_winners_kernel<Wi><<<g.grid, g.block, 0, stream>>>(winner, flag, indices, planes,
                                                                  in_plane, out_plane);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename Wi>
void max_unpool2d_forward_cuda(T* y, const T* x, const Wi* winner, index_t planes,
                               index_t in_plane, index_t out_plane, cudaStream_t stream) {
  if (planes * out_plane == 0) return;
  const RowGrid g = row_grid(planes, out_plane);
  max_unpool2d_forward_kernel<T, Wi><<<g.grid, g.block, 0, stream>>>(y, x, winner, planes,
                                                                     in_plane, out_plane);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void max_unpool2d_backward_cuda(T* dx, int64_t* flag, const T* dy, const int64_t* indices,
                                index_t planes, index_t in_plane, index_t out_plane,
                                cudaStream_t stream) {
  if (planes * in_plane == 0) return;
  const RowGrid g = row_grid(planes, in_plane);
  max_unpool2d_backward_kernel<T><<<g.grid, g.block, 0, stream>>>(dx, flag, dy, indices, planes,
                                                                  in_plane, out_plane);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template void max_unpool2d_winners_cuda<int32_t>(int32_t*, int64_t*, const int64_t*, index_t,
                                                 index_t, index_t, cudaStream_t);
template void max_unpool2d_winners_cuda<int64_t>(int64_t*, int64_t*, const int64_t*, index_t,
                                                 index_t, index_t, cudaStream_t);
#define STRIATE_INSTANTIATE_UNPOOL2D_CUDA(T)                                                  \
  template void max_unpool2d_forward_cuda<T, int32_t>(T*, const T*, const int32_t*, index_t,  \
                                                      index_t, index_t, cudaStream_t);        \
  template void max_unpool2d_forward_cuda<T, int64_t>(T*, const T*, const int64_t*, index_t,  \
                                                      index_t, index_t, cudaStream_t);        \
  template void max_unpool2d_backward_cuda<T>(T*, int64_t*, const T*, const int64_t*, index_t, \
                                              index_t, index_t, cudaStream_t);
STRIATE_INSTANTIATE_UNPOOL2D_CUDA(float)
STRIATE_INSTANTIATE_UNPOOL2D_CUDA(double)

}  // namespace striate
