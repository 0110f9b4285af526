// unpool2d.cu: max-unpooling on the GPU, forward and backward, never
// reading or writing outside the planes whatever the indices.
//
// Forward, in two launches so that a bad index writes nothing to y (the
// caller reads the flag between them):
//  1. winners: checks every index, flags one outside the output plane
//     (index_flag.cuh), and decides which input position writes each cell:
//     the later one (flat order) when several name the same cell, the CPU
//     kernel's rule. Positions, not data, go through atomic maxima, and the
//     maximum does not depend on the order in which they land, so the
//     result is deterministic.
//  2. (launched by striate.ops only when the flag reads back clear) y.
// The winner workspace (planes, out_plane) has two layouts, chosen by
// unpool_compact() from the plane sizes alone, so both launches agree:
//  - compact, when the output plane's winners fit in shared memory and
//    in_plane <= out_plane (the usual unpooling): one block per plane
//    takes the maxima in shared memory and writes, for each input
//    position i, the cell it wins (or -1) at winner[p * in_plane + i].
//    Pass 2 zero-fills the plane of y, then (after a barrier) scatters
//    each winning x to its cell: one pass over x, one over y.
//  - cell-wise otherwise: winner[p][cell] = the winning position (or -1),
//    taken with global atomic maxima after a memset; pass 2 gathers x at
//    each cell's winner.
// Backward: a gather dx[i] = dy[index[i]] that checks each index as it
// goes (0 and a flag for a bad one), four positions per thread when the
// plane length and the pointers allow vector accesses.
#include "check.cuh"
#include "index_flag.cuh"
#include "plane_block.cuh"
#include "row_grid.cuh"
#include "unpool2d.h"
#include "vec.cuh"

namespace striate {

namespace {

constexpr int kBatch = 4;  // positions per thread and step whose loads go out together

__device__ inline void atomic_max_position(int32_t* a, index_t v) { atomicMax(a, (int32_t)v); }
__device__ inline void atomic_max_position(int64_t* a, index_t v) {
  atomicMax(reinterpret_cast<long long*>(a), (long long)v);
}

// The compact layout applies: the winners of an output plane fit in shared
// memory as int32 and each input position has a slot.
bool unpool_compact(index_t in_plane, index_t out_plane) {
  return in_plane <= out_plane && plane_map_fits(out_plane);
}

// Zeros p[0, n) with the threads of one block, 16-byte stores where aligned.
template <typename T>
__device__ inline void zero_fill_block(T* p, index_t n) {
  constexpr int P = kPer16<T>;
  const index_t misalign = (index_t)(reinterpret_cast<uintptr_t>(p) % 16 / sizeof(T));
  const index_t head = misalign == 0 ? 0 : (P - misalign < n ? P - misalign : n);
  const index_t vectors = (n - head) / P;
  for (index_t c = threadIdx.x; c < head; c += blockDim.x) p[c] = T(0);
  for (index_t c = threadIdx.x; c < vectors; c += blockDim.x) store_vec(p + head + c * P, Vec<T, P>{});
  for (index_t c = head + vectors * P + threadIdx.x; c < n; c += blockDim.x) p[c] = T(0);
}

}  // namespace

// ------------------------------------------------------------ compact layout
// One block per plane (grid-stride over planes); dynamic shared memory holds
// out_plane int32 winners. out_plane < 2**31 (it fits in shared memory).
template <typename Wi>
__global__ void __launch_bounds__(kPlaneThreads)
    max_unpool2d_compact_winners_kernel(Wi* __restrict__ winner, int64_t* flag,
                                        const int64_t* __restrict__ indices, index_t planes,
                                        index_t in_plane, index_t out_plane) {
  extern __shared__ int32_t cell_winner[];
  for (index_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const int64_t* ip = indices + p * in_plane;
    Wi* wp = winner + p * in_plane;
    for (index_t c = threadIdx.x; c < out_plane; c += blockDim.x) cell_winner[c] = -1;
    __syncthreads();
    for (index_t i0 = threadIdx.x; i0 < in_plane; i0 += kBatch * (index_t)blockDim.x) {
      int64_t j[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const index_t i = i0 + k * (index_t)blockDim.x;
        j[k] = i < in_plane ? ip[i] : 0;
      }
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const index_t i = i0 + k * (index_t)blockDim.x;
        if (i >= in_plane) continue;
        if (j[k] < 0 || j[k] >= out_plane)
          flag_bad_position(flag, p * in_plane + i);
        else
          atomicMax(&cell_winner[j[k]], (int32_t)i);
      }
    }
    __syncthreads();
    for (index_t i0 = threadIdx.x; i0 < in_plane; i0 += kBatch * (index_t)blockDim.x) {
      int64_t j[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const index_t i = i0 + k * (index_t)blockDim.x;
        j[k] = i < in_plane ? ip[i] : -1;
      }
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const index_t i = i0 + k * (index_t)blockDim.x;
        const bool wins = j[k] >= 0 && j[k] < out_plane && cell_winner[j[k]] == (int32_t)i;
        if (i < in_plane) wp[i] = wins ? (Wi)j[k] : (Wi)-1;
      }
    }
    __syncthreads();  // the next plane resets cell_winner
  }
}

// One block per plane: zeros, a barrier (which orders the block's writes to
// y), then each winning x to its cell, at most one writer per cell.
template <typename T, typename Wi>
__global__ void __launch_bounds__(kPlaneThreads)
    max_unpool2d_compact_forward_kernel(T* __restrict__ y, const T* __restrict__ x,
                                        const Wi* __restrict__ winner, index_t planes,
                                        index_t in_plane, index_t out_plane) {
  for (index_t p = blockIdx.x; p < planes; p += gridDim.x) {
    T* yp = y + p * out_plane;
    const T* xp = x + p * in_plane;
    const Wi* wp = winner + p * in_plane;
    zero_fill_block(yp, out_plane);
    __syncthreads();
    for (index_t i0 = threadIdx.x; i0 < in_plane; i0 += kBatch * (index_t)blockDim.x) {
      index_t j[kBatch];
      T v[kBatch];
#pragma unroll
      for (int k = 0; k < kBatch; ++k) {
        const index_t i = i0 + k * (index_t)blockDim.x;
        j[k] = i < in_plane ? (index_t)wp[i] : -1;
        v[k] = i < in_plane ? xp[i] : T(0);
      }
#pragma unroll
      for (int k = 0; k < kBatch; ++k)
        if (j[k] >= 0 && j[k] < out_plane) yp[j[k]] = v[k];
    }
  }
}

// ---------------------------------------------------------- cell-wise layout
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

// ------------------------------------------------------------------ backward
// (planes rows, in_plane / V chunks of V positions); V > 1 needs in_plane % V
// == 0 and dx, indices aligned for Vec<., V>.
template <typename T, int V>
__global__ void max_unpool2d_backward_kernel(T* __restrict__ dx, int64_t* flag,
                                             const T* __restrict__ dy,
                                             const int64_t* __restrict__ indices, index_t planes,
                                             index_t in_plane, index_t out_plane) {
  const index_t chunks = in_plane / V;
  for (index_t p = grid_row_begin(); p < planes; p += grid_row_step()) {
    const T* dyp = dy + p * out_plane;
    for (index_t q = grid_col_begin(); q < chunks; q += grid_col_step()) {
      const index_t pos = p * in_plane + q * V;
      const Vec<int64_t, V> j = load_vec<V>(indices + pos);
      Vec<T, V> d;
#pragma unroll
      for (int u = 0; u < V; ++u) {
        const bool ok = j.v[u] >= 0 && j.v[u] < out_plane;
        if (!ok) flag_bad_position(flag, pos + u);
        d.v[u] = ok ? dyp[j.v[u]] : T(0);
      }
      store_vec(dx + pos, d);
    }
  }
}

// ----------------------------------------------------------------- launchers

template <typename Wi>
void max_unpool2d_winners_cuda(Wi* winner, int64_t* flag, const int64_t* indices, index_t planes,
                               index_t in_plane, index_t out_plane, cudaStream_t stream) {
  if (planes * out_plane == 0) return;
  if (unpool_compact(in_plane, out_plane)) {
    if (in_plane > 0)
      launch_with_plane_map(max_unpool2d_compact_winners_kernel<Wi>, planes, out_plane, stream,
                            winner, flag, indices, planes, in_plane, out_plane);
    return;
  }
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
  if (unpool_compact(in_plane, out_plane)) {
    max_unpool2d_compact_forward_kernel<T, Wi><<<plane_blocks(planes), kPlaneThreads, 0, stream>>>(
        y, x, winner, planes, in_plane, out_plane);
  } else {
    const RowGrid g = row_grid(planes, out_plane);
    max_unpool2d_forward_kernel<T, Wi><<<g.grid, g.block, 0, stream>>>(y, x, winner, planes,
                                                                       in_plane, out_plane);
  }
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void max_unpool2d_backward_cuda(T* dx, int64_t* flag, const T* dy, const int64_t* indices,
                                index_t planes, index_t in_plane, index_t out_plane,
                                cudaStream_t stream) {
  if (planes * in_plane == 0) return;
  constexpr int V = 4;
  if (in_plane % V == 0 && aligned(dx, sizeof(Vec<T, V>)) &&
      aligned(indices, sizeof(Vec<int64_t, V>))) {
    const RowGrid g = row_grid(planes, in_plane / V);
    max_unpool2d_backward_kernel<T, V><<<g.grid, g.block, 0, stream>>>(dx, flag, dy, indices,
                                                                       planes, in_plane, out_plane);
  } else {
    const RowGrid g = row_grid(planes, in_plane);
    max_unpool2d_backward_kernel<T, 1><<<g.grid, g.block, 0, stream>>>(dx, flag, dy, indices,
                                                                       planes, in_plane, out_plane);
  }
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
