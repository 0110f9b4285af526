// pyramid.cu: pyrDown / pyrUp and their adjoints on the GPU, the same
// separable maps y = Av * x * Ah^T per plane as the CPU kernels
// (cpu/pyramid.cpp), with the same taps and the same order of summation:
// the vertical pass first, then the horizontal one.
// - Forward passes are tiled: a block takes one output tile at a time
//   (grid-stride over planes x tiles), loads the input rows and columns the
//   tile reads into shared memory once, with BORDER_REFLECT_101 resolved by
//   the per-tap math of common/pyramid_taps.h, filters them vertically into
//   a second shared buffer and then horizontally into the output.
// - Adjoints are gathers, deterministic and free of atomics: each thread owns
//   one dx cell and sums dy over the outputs that read it, from the
//   transposed tap lists of common/pyramid_plan.h (uploaded by striate.ops).
#include "check.cuh"
#include "common/pyramid_taps.h"
#include "common/shape.h"
#include "pyramid.h"

namespace striate {

namespace {

constexpr int kThreads = 256;
constexpr index_t kMaxBlocks = 65535 * 16;
// Output tile of one block: pyrDown reads about 2x2 inputs per output,
// pyrUp 1/4 input per output, so pyrUp takes the larger tile.
constexpr int kDownTileH = 16, kDownTileW = 32;
constexpr int kUpTileH = 32, kUpTileW = 64;

__host__ __device__ inline index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Tap a of pyrUp output j (of m along a side of n inputs) as a row or column
// of a shared tile that starts at input index lo; -1 when the tap falls on an
// inserted zero or j is past the output.
__device__ inline int pyr_up_tile_tap(index_t j, int a, index_t n, index_t m, index_t lo,
                                      bool vertical) {
  if (j >= m) return -1;
  const index_t s = pyr_up_source(pyr_up_effective_output(j, n, vertical), a, n);
  return s < 0 ? -1 : (int)(s - lo);
}

// y (planes, Ho, Wo) = pyrDown(x (planes, H, W)), one kDownTileH x kDownTileW tile per step.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    pyr_down_forward_kernel(T* y, const T* x, index_t planes, index_t H, index_t W) {
  // Output row r0 + r reads tile rows 2r .. 2r + 4; tile row k is input row
  // reflect101(2 r0 + k - 2), i.e. "tap k" of output row r0. Same for columns.
  constexpr int IR = 2 * kDownTileH + 3, IC = 2 * kDownTileW + 3;
  __shared__ index_t row_src[IR], col_src[IC];
  __shared__ T in[IR][IC];
  __shared__ T mid[kDownTileH][IC];
  const index_t Ho = pyr_down_output_size(H), Wo = pyr_down_output_size(W);
  const index_t tiles_y = ceil_div(Ho, kDownTileH), tiles_x = ceil_div(Wo, kDownTileW);
  const int tid = threadIdx.x, nt = blockDim.x;
  for (index_t t = blockIdx.x; t < planes * tiles_y * tiles_x; t += gridDim.x) {
    const index_t p = t / (tiles_y * tiles_x);
    const index_t r0 = t / tiles_x % tiles_y * kDownTileH, c0 = t % tiles_x * kDownTileW;
    const T* plane = x + p * H * W;
    for (int k = tid; k < IR; k += nt) row_src[k] = pyr_down_source(r0, k, H);
    for (int k = tid; k < IC; k += nt) col_src[k] = pyr_down_source(c0, k, W);
    __syncthreads();
    for (int e = tid; e < IR * IC; e += nt)
      in[e / IC][e % IC] = plane[row_src[e / IC] * W + col_src[e % IC]];
    __syncthreads();
    for (int e = tid; e < kDownTileH * IC; e += nt) {
      const int r = e / IC, l = e % IC;
      T acc = T(0);
#pragma unroll
      for (int a = 0; a < 5; ++a) acc += T(pyr_kernel_tap(a) / 16.0) * in[2 * r + a][l];
      mid[r][l] = acc;
    }
    __syncthreads();
    for (int e = tid; e < kDownTileH * kDownTileW; e += nt) {
      const int r = e / kDownTileW, c = e % kDownTileW;
      if (r0 + r >= Ho || c0 + c >= Wo) continue;
      T acc = T(0);
#pragma unroll
      for (int a = 0; a < 5; ++a) acc += T(pyr_kernel_tap(a) / 16.0) * mid[r][2 * c + a];
      y[(p * Ho + r0 + r) * Wo + c0 + c] = acc;
    }
    __syncthreads();  // the next tile overwrites the shared buffers
  }
}

// y (planes, Ho, Wo) = pyrUp(x (planes, H, W)), one kUpTileH x kUpTileW tile per step.
template <typename T>
__global__ void __launch_bounds__(kThreads) pyr_up_forward_kernel(T* y, const T* x, index_t planes,
                                                                  index_t H, index_t W, index_t Ho,
                                                                  index_t Wo) {
  // Output rows [r0, r0 + kUpTileH) (r0 even) read input rows within
  // [rlo, rlo + XR), rlo = max(0, r0/2 - 2): unreflected taps read rows
  // r0/2 - 1 .. r0/2 + kUpTileH/2; reflected taps read row 1 (row 0 when
  // n = 1) or row n - 1, only in a tile at that border; the extra last row of an odd
  // size 2n + 1 repeats row 2n - 2, which reads rows n - 2 and n - 1 (hence
  // the "- 2" when r0 = 2n). Same for columns.
  constexpr int XR = kUpTileH / 2 + 3, XC = kUpTileW / 2 + 3;
  __shared__ int row_tap[kUpTileH][5], col_tap[kUpTileW][5];  // tile row / column, or -1
  __shared__ T in[XR][XC];
  __shared__ T mid[kUpTileH][XC];
  const index_t tiles_y = ceil_div(Ho, kUpTileH), tiles_x = ceil_div(Wo, kUpTileW);
  const int tid = threadIdx.x, nt = blockDim.x;
  for (index_t t = blockIdx.x; t < planes * tiles_y * tiles_x; t += gridDim.x) {
    const index_t p = t / (tiles_y * tiles_x);
    const index_t r0 = t / tiles_x % tiles_y * kUpTileH, c0 = t % tiles_x * kUpTileW;
    const index_t rlo = r0 / 2 > 2 ? r0 / 2 - 2 : 0, clo = c0 / 2 > 2 ? c0 / 2 - 2 : 0;
    const int nr = (int)(H - rlo < XR ? H - rlo : XR), nc = (int)(W - clo < XC ? W - clo : XC);
    const T* plane = x + p * H * W;
    for (int e = tid; e < kUpTileH * 5; e += nt)
      row_tap[e / 5][e % 5] = pyr_up_tile_tap(r0 + e / 5, e % 5, H, Ho, rlo, true);
    for (int e = tid; e < kUpTileW * 5; e += nt)
      col_tap[e / 5][e % 5] = pyr_up_tile_tap(c0 + e / 5, e % 5, W, Wo, clo, false);
    for (int e = tid; e < nr * nc; e += nt)
      in[e / nc][e % nc] = plane[(rlo + e / nc) * W + clo + e % nc];
    __syncthreads();
    for (int e = tid; e < kUpTileH * nc; e += nt) {
      const int r = e / nc, l = e % nc;
      T acc = T(0);
#pragma unroll
      for (int a = 0; a < 5; ++a) {
        const int k = row_tap[r][a];
        if (k >= 0) acc += T(pyr_kernel_tap(a) / 8.0) * in[k][l];
      }
      mid[r][l] = acc;
    }
    __syncthreads();
    for (int e = tid; e < kUpTileH * kUpTileW; e += nt) {
      const int r = e / kUpTileW, c = e % kUpTileW;
      if (r0 + r >= Ho || c0 + c >= Wo) continue;
      T acc = T(0);
#pragma unroll
      for (int a = 0; a < 5; ++a) {
        const int k = col_tap[c][a];
        if (k >= 0) acc += T(pyr_kernel_tap(a) / 8.0) * mid[r][k];
      }
      y[(p * Ho + r0 + r) * Wo + c0 + c] = acc;
    }
    __syncthreads();  // the next tile overwrites the shared buffers
  }
}

// out (planes, Ho, Wo) = rows * in (planes, Hi, Wi) * cols^T for CSR tap
// lists: out[r][c] = sum_eh wt_h * (sum_ev wt_v * in[src_v][src_h]), the
// vertical sum innermost as in the CPU kernel. Sources outside `in` (never
// produced by pyramid_plan.h) are skipped rather than read.
template <typename T>
__global__ void separable_gather_kernel(T* out, const T* in, index_t planes, index_t Hi, index_t Wi,
                                        index_t Ho, index_t Wo, PyrTapsDevice rows,
                                        PyrTapsDevice cols) {
  const index_t count = planes * Ho * Wo;
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < count;
       i += (index_t)gridDim.x * blockDim.x) {
    const index_t c = i % Wo, r = i / Wo % Ho;
    const T* plane = in + i / (Ho * Wo) * Hi * Wi;
    const index_t ev0 = rows.ptr[r], ev1 = rows.ptr[r + 1];
    T acc = T(0);
    for (index_t eh = cols.ptr[c]; eh < cols.ptr[c + 1]; ++eh) {
      const index_t sc = cols.src[eh];
      if (sc < 0 || sc >= Wi) continue;
      T v = T(0);
      for (index_t ev = ev0; ev < ev1; ++ev) {
        const index_t sr = rows.src[ev];
        if (sr >= 0 && sr < Hi) v += T(rows.wt[ev]) * plane[sr * Wi + sc];
      }
      acc += T(cols.wt[eh]) * v;
    }
    out[i] = acc;
  }
}

int grid_for(index_t work_items, index_t per_block) {
  const index_t blocks = ceil_div(work_items, per_block);
  return (int)(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <typename T>
void separable_gather(T* out, const T* in, index_t planes, index_t Hi, index_t Wi, index_t Ho,
                      index_t Wo, PyrTapsDevice rows, PyrTapsDevice cols, cudaStream_t stream) {
  const index_t count = planes * Ho * Wo;
  if (count == 0) return;
  separable_gather_kernel<T><<<grid_for(count, kThreads), kThreads, 0, stream>>>(
      out, in, planes, Hi, Wi, Ho, Wo, rows, cols);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

// ---------------------------------------------------------------- launchers

template <typename T>
void pyr_down_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W,
                           cudaStream_t stream) {
  const index_t Ho = pyr_down_output_size(H), Wo = pyr_down_output_size(W);
  const index_t tiles = planes * ceil_div(Ho, kDownTileH) * ceil_div(Wo, kDownTileW);
  if (tiles == 0) return;
  pyr_down_forward_kernel<T><<<grid_for(tiles, 1), kThreads, 0, stream>>>(y, x, planes, H, W);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void pyr_down_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W,
                            PyrTapsDevice rows, PyrTapsDevice cols, cudaStream_t stream) {
  separable_gather(dx, dy, planes, pyr_down_output_size(H), pyr_down_output_size(W), H, W, rows,
                   cols, stream);
}

template <typename T>
void pyr_up_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W, index_t Ho,
                         index_t Wo, cudaStream_t stream) {
  const index_t tiles = planes * ceil_div(Ho, kUpTileH) * ceil_div(Wo, kUpTileW);
  if (tiles == 0) return;
  pyr_up_forward_kernel<T><<<grid_for(tiles, 1), kThreads, 0, stream>>>(y, x, planes, H, W, Ho,
                                                                        Wo);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void pyr_up_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t Ho,
                          index_t Wo, PyrTapsDevice rows, PyrTapsDevice cols,
                          cudaStream_t stream) {
  separable_gather(dx, dy, planes, Ho, Wo, H, W, rows, cols, stream);
}

#define STRIATE_INSTANTIATE_PYRAMID_CUDA(T)                                                     \
  template void pyr_down_forward_cuda<T>(T*, const T*, index_t, index_t, index_t, cudaStream_t); \
  template void pyr_down_backward_cuda<T>(T*, const T*, index_t, index_t, index_t,             \
                                          PyrTapsDevice, PyrTapsDevice, cudaStream_t);         \
  template void pyr_up_forward_cuda<T>(T*, const T*, index_t, index_t, index_t, index_t,       \
                                       index_t, cudaStream_t);                                 \
  template void pyr_up_backward_cuda<T>(T*, const T*, index_t, index_t, index_t, index_t,      \
                                        index_t, PyrTapsDevice, PyrTapsDevice, cudaStream_t);
STRIATE_INSTANTIATE_PYRAMID_CUDA(float)
STRIATE_INSTANTIATE_PYRAMID_CUDA(double)

}  // namespace striate
