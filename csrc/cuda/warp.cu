// warp.cu: affine warp with PyTorch's affine_grid + grid_sample conventions
// on the GPU, the same per-pixel math as the CPU kernel (cpu/warp.cpp,
// common/warp_coords.h). One thread per output pixel (n, i, j), over
// (N * Ho rows, Wo) (row_grid.cuh, no division per pixel): it computes the
// source coordinate once, in double, and samples every channel with it,
// several channels' loads in flight at once; neighbouring threads write
// neighbouring pixels.
#include "check.cuh"
#include "common/warp_coords.h"
#include "row_grid.cuh"
#include "warp.h"

namespace striate {

namespace {

template <typename T>
__global__ void warp_affine_forward_kernel(T* __restrict__ y, const T* __restrict__ x,
                                           const T* __restrict__ theta, index_t N, index_t C,
                                           index_t H, index_t W, index_t Ho, index_t Wo, int mode,
                                           int padding, bool align_corners) {
  const index_t rows = N * Ho, out_plane = Ho * Wo, in_plane = H * W;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t n = r / Ho, i = r - n * Ho;
    const double yn = warp_base_coord(i, Ho, align_corners);
    const T* xn = x + n * C * in_plane;
    T* yr = y + n * C * out_plane + i * Wo;
    for (index_t j = grid_col_begin(); j < Wo; j += grid_col_step()) {
      double gx, gy;
      warp_affine_point(theta + n * 6, warp_base_coord(j, Wo, align_corners), yn, &gx, &gy);
      const double px = warp_source_coord(gx, W, padding, align_corners);
      const double py = warp_source_coord(gy, H, padding, align_corners);
#pragma unroll 4
      for (index_t c = 0; c < C; ++c)
        yr[c * out_plane + j] = warp_sample(xn + c * in_plane, H, W, px, py, mode);
    }
  }
}

}  // namespace

template <typename T>
void warp_affine_forward_cuda(T* y, const T* x, const T* theta, index_t N, index_t C, index_t H,
                              index_t W, index_t Ho, index_t Wo, int mode, int padding,
                              bool align_corners, cudaStream_t stream) {
  if (N * Ho * Wo == 0 || C == 0) return;
  const RowGrid g = row_grid(N * Ho, Wo);
  warp_affine_forward_kernel<T><<<g.grid, g.block, 0, stream>>>(y, x, theta, N, C, H, W, Ho, Wo,
                                                                mode, padding, align_corners);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template void warp_affine_forward_cuda<float>(float*, const float*, const float*, index_t, index_t,
                                              index_t, index_t, index_t, index_t, int, int, bool,
                                              cudaStream_t);
template void warp_affine_forward_cuda<double>(double*, const double*, const double*, index_t,
                                               index_t, index_t, index_t, index_t, index_t, int,
                                               int, bool, cudaStream_t);

}  // namespace striate
