// row_grid.cuh: the launch shape of the per-plane kernels (pad2d, pool2d,
// unpool2d). The work is `rows` rows of `cols` cells: a row is one image
// row of one (n, c) plane (so a kernel derives (plane, row) with one
// division per row, not per element) or a whole flattened plane. The 2-D
// grid covers rows along x and column tiles along y, so both many short
// rows and a few very long ones fill the GPU. Every kernel walks its cells
// with grid-stride loops in 64-bit indices, so any extent is covered
// whatever the grid caps:
//
//   for (index_t r = grid_row_begin(); r < rows; r += grid_row_step())
//     for (index_t c = grid_col_begin(); c < cols; c += grid_col_step()) ...
//
// A kernel that gives each thread V cells of a row per step, blockDim.x
// apart (so that each of its V accesses is coalesced across a warp, and the
// V loads are in flight together), launches with row_grid_unrolled<V> and
// walks
//
//   for (index_t c0 = grid_col_begin_unrolled<V>(); c0 < cols; c0 += grid_col_step_unrolled<V>())
//     for (int k = 0; k < V; ++k) { const index_t c = c0 + k * blockDim.x; if (c < cols) ... }
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

struct RowGrid {
  dim3 grid, block;
};

// 256 threads per block: up to 256 along a row, the rest across rows.
inline RowGrid row_grid(index_t rows, index_t cols) {
  const unsigned bx = cols <= 32 ? 32 : cols <= 64 ? 64 : cols <= 128 ? 128 : 256;
  const unsigned by = 256 / bx;
  const index_t gx = (rows + by - 1) / by, gy = (cols + bx - 1) / bx;
  RowGrid g;
  g.block = dim3(bx, by);
  g.grid = dim3((unsigned)(gx < 1 ? 1 : gx < 0x7fffffff ? gx : 0x7fffffff),
                (unsigned)(gy < 1 ? 1 : gy < 65535 ? gy : 65535));
  return g;
}

__device__ inline index_t grid_row_begin() {
  return (index_t)blockIdx.x * blockDim.y + threadIdx.y;
}
__device__ inline index_t grid_row_step() { return (index_t)gridDim.x * blockDim.y; }
__device__ inline index_t grid_col_begin() {
  return (index_t)blockIdx.y * blockDim.x + threadIdx.x;
}
__device__ inline index_t grid_col_step() { return (index_t)gridDim.y * blockDim.x; }

template <int V>
inline RowGrid row_grid_unrolled(index_t rows, index_t cols) {
  return row_grid(rows, (cols + V - 1) / V);
}
template <int V>
__device__ inline index_t grid_col_begin_unrolled() {
  return (index_t)blockIdx.y * blockDim.x * V + threadIdx.x;
}
template <int V>
__device__ inline index_t grid_col_step_unrolled() {
  return (index_t)gridDim.y * blockDim.x * V;
}

}  // namespace striate
