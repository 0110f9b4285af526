// warp.cu: affine warp with PyTorch's affine_grid + grid_sample conventions
// on the GPU, the same per-pixel math as the CPU kernel (cpu/warp.cpp,
// common/warp_coords.h). One thread per output pixel (n, i, j), grid-stride:
// it computes the source coordinate once, in double, and samples every
// channel with it; neighbouring threads write neighbouring pixels.
#include "check.cuh"
#include "common/warp_coords.h"
#include "warp.h"

namespace striate {

namespace {

constexpr int kThreads = 256;
constexpr index_t kMaxBlocks = 65535 * 16;

template <typename T>
__global__ void warp_affine_forward_kernel(T* y, const T* x, const T* theta, index_t N, index_t C,
                                           index_t H, index_t W, index_t Ho, index_t Wo, int mode,
                                           int padding, bool align_corners) {
  const index_t count = N * Ho * Wo;
  for (index_t p = blockIdx.x * (index_t)blockDim.x + threadIdx.x; p < count;
       p += (index_t)gridDim.x * blockDim.x) {
    const index_t j = p % Wo, i = p / Wo % Ho, n = p / (Ho * Wo);
    double gx, gy;
    warp_affine_point(theta + n * 6, warp_base_coord(j, Wo, align_corners),
                      warp_base_coord(i, Ho, align_corners), &gx, &gy);
    const double px = warp_source_coord(gx, W, padding, align_corners);
    const double py = warp_source_coord(gy, H, padding, align_corners);
    for (index_t c = 0; c < C; ++c)
      y[((n * C + c) * Ho + i) * Wo + j] =
          warp_sample(x + (n * C + c) * H * W, H, W, px, py, mode);
  }
}

}  // namespace

template <typename T>
void warp_affine_forward_cuda(T* y, const T* x, const T* theta, index_t N, index_t C, index_t H,
                              index_t W, index_t Ho, index_t Wo, int mode, int padding,
                              bool align_corners, cudaStream_t stream) {
  const index_t count = N * Ho * Wo;
  if (count == 0 || C == 0) return;
  const index_t blocks = (count + kThreads - 1) / kThreads;
  warp_affine_forward_kernel<T><<<(int)(blocks < kMaxBlocks ? blocks : kMaxBlocks), kThreads, 0,
                                  stream>>>(y, x, theta, N, C, H, W, Ho, Wo, mode, padding,
                                            align_corners);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template void warp_affine_forward_cuda<float>(float*, const float*, const float*, index_t, index_t,
                                              index_t, index_t, index_t, index_t, int, int, bool,
                                              cudaStream_t);
template void warp_affine_forward_cuda<double>(double*, const double*, const double*, index_t,
                                               index_t, index_t, index_t, index_t, index_t, int,
                                               int, bool, cudaStream_t);

}  // namespace striate
