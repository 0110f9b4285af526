// pyramid.cu: pyrDown / pyrUp and their adjoints on the GPU, the same
// separable maps y = Av * x * Ah^T per plane as the CPU kernels
// (cpu/pyramid.cpp), with the same taps and the same order of summation:
// the vertical pass first, then the horizontal one, taps in increasing order.
// - pyr_down: tiled. A block takes one output tile position at a time for a
//   group of planes (grid-stride over positions x plane groups), loads the
//   input rows and columns the tile reads into shared memory once (all of a
//   thread's loads in flight together, the next plane's while the current
//   one is filtered),
//   with BORDER_REFLECT_101 resolved by the per-tap math of
//   common/pyramid_taps.h, filters them vertically into a second shared
//   buffer and then horizontally into the output.
// - pyr_up: one thread per strip of kUpRows input cells (t0.., u) writes
//   the 2x2 outputs (2t .. 2t+1, 2u .. 2u+1) of each from the 3x3 input cells
//   around it, each input row loaded once per strip. Of the five
//   taps of an output only the even ones (three for an even output, two for
//   an odd one) fall on input samples, and with BORDER_REFLECT_101 on the
//   upsampled side they read rows rm(t), t, rp(t) with rm(t) = t - 1 (1, or
//   0 when H = 1, at t = 0) and rp(t) = min(t + 1, H - 1), at every t:
//   reflect101(2t - 2) / 2 and reflect101(2t + 2) / 2. Same for columns. The
//   extra last row (2H, when Ho = 2H + 1) repeats row 2H - 2 and the extra
//   last column (2W) repeats column 2W - 1 (pyramid_taps.h).
// - Adjoints are gathers, deterministic and free of atomics, over the
//   transposed tap lists of common/pyramid_plan.h (uploaded by striate.ops),
//   tiled like pyr_down: a block copies the lists of its tile's rows and
//   columns and the patch of dy they read into shared memory, sums
//   vertically into a shared buffer, then horizontally into dx. A tile
//   whose lists or patch outgrow the buffers (never for pyramid taps) sums
//   straight from global memory instead, with the same arithmetic.
#include "check.cuh"
#include "common/pyramid_taps.h"
#include "common/shape.h"
#include "pyramid.h"
#include "row_grid.cuh"
#include "vec.cuh"

namespace striate {

namespace {

constexpr int kThreads = 256;
constexpr index_t kMaxBlocks = 65535 * 16;
// Output tile of one pyr_down block.
constexpr int kDownTileH = 16, kDownTileW = 32;

__host__ __device__ constexpr index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

// Up to K elements per thread of a block-wide copy of elements [0, count)
// (count <= K * kThreads), held in registers between the loads and the
// stores, so that a thread's loads are in flight together and can overlap
// other work before the stores.
template <int K, typename T>
struct Staged {
  T v[K];
  template <typename Load>
  __device__ void load(int count, Load load_one) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int e = (int)threadIdx.x + k * kThreads;
      if (e < count) v[k] = load_one(e);
    }
  }
  template <typename Store>
  __device__ void store(int count, Store store_one) const {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int e = (int)threadIdx.x + k * kThreads;
      if (e < count) store_one(e, v[k]);
    }
  }
};

// Planes per block step of the tiled kernels: tiles depend on the tile's
// position only (taps, sources), so a block takes one position for a group
// of planes, loading the next plane's inputs while it filters the current
// one; groups are sized to leave about 2048 block steps.
index_t plane_group(index_t planes, index_t tiles) {
  const index_t group = planes * tiles / 2048;
  return group < 1 ? 1 : group > planes ? planes : group;
}

// y (planes, Ho, Wo) = pyrDown(x (planes, H, W)), one kDownTileH x
// kDownTileW tile position for `group` planes per step.
template <typename T>
__global__ void __launch_bounds__(kThreads, 3)
    pyr_down_forward_kernel(T* __restrict__ y, const T* __restrict__ x, index_t planes, index_t H,
                            index_t W, index_t group) {
  // Output row r0 + r reads tile rows 2r .. 2r + 4; tile row k is input row
  // reflect101(2 r0 + k - 2), i.e. "tap k" of output row r0. Same for columns.
  constexpr int IR = 2 * kDownTileH + 3, IC = 2 * kDownTileW + 3;
  __shared__ index_t row_offset[IR], col_src[IC];
  __shared__ T in[IR][IC];
  __shared__ T mid[kDownTileH][IC];
  const index_t Ho = pyr_down_output_size(H), Wo = pyr_down_output_size(W);
  const index_t tiles_x = ceil_div(Wo, kDownTileW), tiles = ceil_div(Ho, kDownTileH) * tiles_x;
  const int tid = threadIdx.x;
  for (index_t item = blockIdx.x; item < tiles * ceil_div(planes, group); item += gridDim.x) {
    const index_t tile = item % tiles, p0 = item / tiles * group;
    const index_t p1 = p0 + group < planes ? p0 + group : planes;
    const index_t r0 = tile / tiles_x * kDownTileH, c0 = tile % tiles_x * kDownTileW;
    for (int k = tid; k < IR; k += kThreads) row_offset[k] = pyr_down_source(r0, k, H) * W;
    for (int k = tid; k < IC; k += kThreads) col_src[k] = pyr_down_source(c0, k, W);
    __syncthreads();
    const auto input = [&](index_t p, int e) {
      return x[p * H * W + row_offset[e / IC] + col_src[e % IC]];
    };
    Staged<ceil_div(IR * IC, kThreads), T> next;
    next.load(IR * IC, [&](int e) { return input(p0, e); });
    for (index_t p = p0; p < p1; ++p) {
      next.store(IR * IC, [&](int e, T v) { in[e / IC][e % IC] = v; });
      __syncthreads();
      if (p + 1 < p1) next.load(IR * IC, [&](int e) { return input(p + 1, e); });
      for (int e = tid; e < kDownTileH * IC; e += kThreads) {
        const int r = e / IC, l = e % IC;
        T acc = T(0);
#pragma unroll
        for (int a = 0; a < 5; ++a) acc += T(pyr_kernel_tap(a) / 16.0) * in[2 * r + a][l];
        mid[r][l] = acc;
      }
      __syncthreads();
      for (int e = tid; e < kDownTileH * kDownTileW; e += kThreads) {
        const int r = e / kDownTileW, c = e % kDownTileW;
        if (r0 + r >= Ho || c0 + c >= Wo) continue;
        T acc = T(0);
#pragma unroll
        for (int a = 0; a < 5; ++a) acc += T(pyr_kernel_tap(a) / 16.0) * mid[r][2 * c + a];
        y[(p * Ho + r0 + r) * Wo + c0 + c] = acc;
      }
    }
    __syncthreads();  // the next step overwrites the shared buffers
  }
}

// ------------------------------------------------------------------- pyr_up
template <typename T>
STRIATE_HD inline T up_weight(int a) {
  return T(pyr_kernel_tap(a) / 8.0);
}

// Vertical pass at one input column, rows rm, t, rp holding a, b, d: the
// even output row (taps 0, 2, 4) and the odd one (taps 1, 3 on b, d).
template <typename T>
STRIATE_HD inline void pyr_up_vertical(T a, T b, T d, T* even, T* odd) {
  T e = T(0);
  e += up_weight<T>(0) * a;
  e += up_weight<T>(2) * b;
  e += up_weight<T>(4) * d;
  T o = T(0);
  o += up_weight<T>(1) * b;
  o += up_weight<T>(3) * d;
  *even = e;
  *odd = o;
}

// Horizontal pass: the even output column (taps 0, 2, 4 on columns cm, u,
// cp) and the odd one (taps 1, 3 on columns u, cp).
template <typename T>
STRIATE_HD inline T pyr_up_even(T mm, T m0, T mp) {
  T acc = T(0);
  acc += up_weight<T>(0) * mm;
  acc += up_weight<T>(2) * m0;
  acc += up_weight<T>(4) * mp;
  return acc;
}
template <typename T>
STRIATE_HD inline T pyr_up_odd(T m0, T mp) {
  T acc = T(0);
  acc += up_weight<T>(1) * m0;
  acc += up_weight<T>(3) * mp;
  return acc;
}

// Columns 2u, 2u + 1 (when < Wo) and 2W (a copy of 2W - 1, when Wo = 2W + 1)
// of one output row; `pairs`: Wo == 2W and the row 2T-aligned.
template <typename T>
STRIATE_HD inline void pyr_up_store_row(T* row, index_t u, index_t W, index_t Wo, T even, T odd,
                                        bool pairs) {
  if (pairs) {
    store_vec(row + 2 * u, Vec<T, 2>{{even, odd}});
    return;
  }
  row[2 * u] = even;
  if (2 * u + 1 < Wo) row[2 * u + 1] = odd;
  if (u == W - 1 && Wo == 2 * W + 1) row[2 * W] = odd;
}

constexpr int kUpRows = 2;  // input rows per pyr_up thread

// The outputs of input cells (t0 .. t0 + kUpRows - 1, u) of one plane (x's
// plane, y's plane yp; rows from H on are skipped). The kUpRows + 2 input
// rows they read, rm(t0) and then min(t0 + k - 1, H - 1) for k >= 1, are
// loaded once, at columns cm(u), u, cp(u).
template <typename T>
STRIATE_HD inline void pyr_up_strip(T* yp, const T* plane, index_t H, index_t W, index_t Ho,
                                    index_t Wo, index_t t0, index_t u, bool pairs) {
  constexpr int R = kUpRows;
  const index_t cm = u > 0 ? u - 1 : W > 1 ? 1 : 0, cp = u + 1 < W ? u + 1 : W - 1;
  T a[R + 2], b[R + 2], d[R + 2];
#pragma unroll
  for (int k = 0; k < R + 2; ++k) {
    const index_t row = k == 0 ? (t0 > 0 ? t0 - 1 : H > 1 ? 1 : 0)
                               : (t0 + k - 1 < H ? t0 + k - 1 : H - 1);
    const T* xr = plane + row * W;
    a[k] = xr[cm];
    b[k] = xr[u];
    d[k] = xr[cp];
  }
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const index_t t = t0 + i;
    if (t >= H) break;
    T em, om, e0, o0, ep, op;
    pyr_up_vertical(a[i], a[i + 1], a[i + 2], &em, &om);
    pyr_up_vertical(b[i], b[i + 1], b[i + 2], &e0, &o0);
    pyr_up_vertical(d[i], d[i + 1], d[i + 2], &ep, &op);
    const T ee = pyr_up_even(em, e0, ep), eo = pyr_up_odd(e0, ep);
    pyr_up_store_row(yp + 2 * t * Wo, u, W, Wo, ee, eo, pairs);
    if (2 * t + 1 < Ho)
      pyr_up_store_row(yp + (2 * t + 1) * Wo, u, W, Wo, pyr_up_even(om, o0, op),
                       pyr_up_odd(o0, op), pairs);
    if (t == H - 1 && Ho == 2 * H + 1) pyr_up_store_row(yp + 2 * H * Wo, u, W, Wo, ee, eo, pairs);
  }
}

// y (planes, Ho, Wo) = pyrUp(x (planes, H, W)); (planes * ceil(H / kUpRows)
// strips, W) of input cells.
template <typename T>
__global__ void __launch_bounds__(256, sizeof(T) == 4 ? 4 : 3) pyr_up_forward_kernel(T* __restrict__ y, const T* __restrict__ x, index_t planes,
                                      index_t H, index_t W, index_t Ho, index_t Wo, bool pairs) {
  const index_t strips = ceil_div(H, kUpRows), rows = planes * strips;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / strips, t0 = (r - p * strips) * kUpRows;
    for (index_t u = grid_col_begin(); u < W; u += grid_col_step())
      pyr_up_strip(y + p * Ho * Wo, x + p * H * W, H, W, Ho, Wo, t0, u, pairs);
  }
}

// ----------------------------------------------------------------- adjoints
// out (planes, Ho, Wo) = rows * in (planes, Hi, Wi) * cols^T for CSR tap
// lists: out[r][c] = sum_eh wt_h * (sum_ev wt_v * in[src_v][src_h]), the
// vertical sum innermost as in the CPU kernel. Sources outside `in` (never
// produced by pyramid_plan.h) are skipped rather than read.
template <typename T>
__device__ inline T separable_gather_cell(const T* plane, index_t Hi, index_t Wi,
                                          const PyrTapsDevice& rows, const PyrTapsDevice& cols,
                                          index_t r, index_t c) {
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
  return acc;
}

// The lists of one axis for the n outputs [o0, o0 + n) of a tile, in
// shared memory: output k reads entries [begin[k], begin[k + 1]) with
// sources relative to the patch (-1: outside the input) and weights in T.
template <typename T, int N, int E>
struct TileTaps {
  int begin[N + 1];
  int src[E];
  T wt[E];
};

// Min and max valid source of entries [e0, e1) (lo > hi when none), by one
// warp; the result is in lane 0.
__device__ inline void source_range(const PyrTapsDevice& taps, index_t e0, index_t e1, index_t n_in,
                                    long long* lo, long long* hi) {
  long long mn = LLONG_MAX, mx = -1;
  for (index_t e = e0 + threadIdx.x % 32; e < e1; e += 32) {
    const index_t s = taps.src[e];
    if (s >= 0 && s < n_in) {
      mn = s < mn ? s : mn;
      mx = s > mx ? s : mx;
    }
  }
  for (int d = 16; d > 0; d /= 2) {
    const long long a = __shfl_xor_sync(0xffffffffu, mn, d), b = __shfl_xor_sync(0xffffffffu, mx, d);
    mn = a < mn ? a : mn;
    mx = b > mx ? b : mx;
  }
  *lo = mn;
  *hi = mx;
}

// Copies the lists of outputs [o0, o0 + n) (entries [e0, e0 + count)) with
// sources made relative to lo.
template <typename T, int N, int E>
__device__ inline void copy_tile_taps(TileTaps<T, N, E>* dst, const PyrTapsDevice& taps, index_t o0,
                                      int n, index_t e0, int count, index_t n_in, index_t lo) {
  for (int k = threadIdx.x; k <= N; k += kThreads)
    dst->begin[k] = (int)(taps.ptr[o0 + (k < n ? k : n)] - e0);
  for (int e = threadIdx.x; e < count; e += kThreads) {
    const index_t s = taps.src[e0 + e];
    dst->src[e] = s >= 0 && s < n_in ? (int)(s - lo) : -1;
    dst->wt[e] = T(taps.wt[e0 + e]);
  }
}

// out (planes, Ho, Wo) from in (planes, Hi, Wi), one TH x TW tile position
// for `group` planes per step; the patch of `in` a tile reads must fit
// PR x PC, its lists 8 entries per output on average.
template <typename T, int TH, int TW, int PR, int PC>
__global__ void __launch_bounds__(kThreads, sizeof(T) == 4 ? 4 : 3)
    separable_gather_kernel(T* __restrict__ out, const T* __restrict__ in, index_t planes,
                            index_t Hi, index_t Wi, index_t Ho, index_t Wo, PyrTapsDevice rows,
                            PyrTapsDevice cols, index_t group) {
  constexpr int ER = 8 * TH, EC = 8 * TW;
  __shared__ TileTaps<T, TH, ER> row_taps;
  __shared__ TileTaps<T, TW, EC> col_taps;
  __shared__ T patch[PR][PC];
  __shared__ T mid[TH][PC];
  __shared__ long long range[4];  // row lo, hi; column lo, hi
  const index_t tiles_x = ceil_div(Wo, TW), tiles = ceil_div(Ho, TH) * tiles_x;
  const int tid = threadIdx.x;
  for (index_t item = blockIdx.x; item < tiles * ceil_div(planes, group); item += gridDim.x) {
    const index_t tile = item % tiles, p0 = item / tiles * group;
    const index_t p1 = p0 + group < planes ? p0 + group : planes;
    const index_t r0 = tile / tiles_x * TH, c0 = tile % tiles_x * TW;
    const int nr = (int)(Ho - r0 < TH ? Ho - r0 : TH), nc = (int)(Wo - c0 < TW ? Wo - c0 : TW);
    const index_t er0 = rows.ptr[r0], er1 = rows.ptr[r0 + nr];
    const index_t ec0 = cols.ptr[c0], ec1 = cols.ptr[c0 + nc];
    if (tid / 32 == 0) source_range(rows, er0, er1, Hi, &range[0], &range[1]);
    if (tid / 32 == 1) source_range(cols, ec0, ec1, Wi, &range[2], &range[3]);
    __syncthreads();
    const long long rlo = range[0], rhi = range[1], clo = range[2], chi = range[3];
    const bool fits = er1 - er0 <= ER && ec1 - ec0 <= EC && rhi - rlo < PR && chi - clo < PC;
    if (fits) {
      // (an axis without valid sources has lo > hi: an empty patch, and every list entry is -1)
      const int pr = rlo <= rhi ? (int)(rhi - rlo + 1) : 0, pc = clo <= chi ? (int)(chi - clo + 1) : 0;
      copy_tile_taps(&row_taps, rows, r0, nr, er0, (int)(er1 - er0), Hi, rlo);
      copy_tile_taps(&col_taps, cols, c0, nc, ec0, (int)(ec1 - ec0), Wi, clo);
      const auto input = [&](index_t p, int e) {
        const int i = e / PC, j = e % PC;
        return i < pr && j < pc ? in[p * Hi * Wi + (rlo + i) * Wi + clo + j] : T(0);
      };
      Staged<ceil_div(PR * PC, kThreads), T> next;
      next.load(PR * PC, [&](int e) { return input(p0, e); });
      for (index_t p = p0; p < p1; ++p) {
        next.store(PR * PC, [&](int e, T v) { patch[e / PC][e % PC] = v; });
        __syncthreads();
        if (p + 1 < p1) next.load(PR * PC, [&](int e) { return input(p + 1, e); });
        for (int e = tid; e < TH * PC; e += kThreads) {
          const int r = e / PC, l = e % PC;
          if (r >= nr || l >= pc) continue;
          T v = T(0);
          for (int ev = row_taps.begin[r]; ev < row_taps.begin[r + 1]; ++ev) {
            const int s = row_taps.src[ev];
            if (s >= 0) v += row_taps.wt[ev] * patch[s][l];
          }
          mid[r][l] = v;
        }
        __syncthreads();
        T* out_plane = out + p * Ho * Wo;
        for (int e = tid; e < TH * TW; e += kThreads) {
          const int r = e / TW, c = e % TW;
          if (r >= nr || c >= nc) continue;
          T acc = T(0);
          for (int eh = col_taps.begin[c]; eh < col_taps.begin[c + 1]; ++eh) {
            const int s = col_taps.src[eh];
            if (s >= 0) acc += col_taps.wt[eh] * mid[r][s];
          }
          out_plane[(r0 + r) * Wo + c0 + c] = acc;
        }
      }
    } else {
      for (index_t p = p0; p < p1; ++p)
        for (int e = tid; e < TH * TW; e += kThreads) {
          const int r = e / TW, c = e % TW;
          if (r < nr && c < nc)
            out[(p * Ho + r0 + r) * Wo + c0 + c] =
                separable_gather_cell(in + p * Hi * Wi, Hi, Wi, rows, cols, r0 + r, c0 + c);
        }
    }
    __syncthreads();  // the next step overwrites the shared buffers
  }
}

int grid_for(index_t work_items, index_t per_block) {
  const index_t blocks = ceil_div(work_items, per_block);
  return (int)(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

// The adjoint of one pyramid step with a TH x TW tile of `out` and a PR x PC
// patch of `in` (which covers what such a tile reads).
template <typename T, int TH, int TW, int PR, int PC>
void separable_gather(T* out, const T* in, index_t planes, index_t Hi, index_t Wi, index_t Ho,
                      index_t Wo, PyrTapsDevice rows, PyrTapsDevice cols, cudaStream_t stream) {
  const index_t tiles = ceil_div(Ho, TH) * ceil_div(Wo, TW);
  if (planes * tiles == 0) return;
  const index_t group = plane_group(planes, tiles);
  separable_gather_kernel<T, TH, TW, PR, PC>
      <<<grid_for(tiles * ceil_div(planes, group), 1), kThreads, 0, stream>>>(
          out, in, planes, Hi, Wi, Ho, Wo, rows, cols, group);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

// ---------------------------------------------------------------- launchers

template <typename T>
void pyr_down_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W,
                           cudaStream_t stream) {
  const index_t Ho = pyr_down_output_size(H), Wo = pyr_down_output_size(W);
  const index_t tiles = ceil_div(Ho, kDownTileH) * ceil_div(Wo, kDownTileW);
  if (planes * tiles == 0) return;
  const index_t group = plane_group(planes, tiles);
  pyr_down_forward_kernel<T><<<grid_for(tiles * ceil_div(planes, group), 1), kThreads, 0, stream>>>(
      y, x, planes, H, W, group);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

// pyr_down's adjoint: a 32 x 64 tile of dx reads about 19 x 35 cells of dy.
template <typename T>
void pyr_down_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W,
                            PyrTapsDevice rows, PyrTapsDevice cols, cudaStream_t stream) {
  separable_gather<T, 32, 64, 24, 40>(dx, dy, planes, pyr_down_output_size(H),
                                      pyr_down_output_size(W), H, W, rows, cols, stream);
}

template <typename T>
void pyr_up_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W, index_t Ho,
                         index_t Wo, cudaStream_t stream) {
  if (planes * H * W == 0) return;
  const bool pairs = Wo == 2 * W && aligned(y, 2 * sizeof(T));
  const RowGrid g = row_grid(planes * ceil_div(H, kUpRows), W);
  pyr_up_forward_kernel<T><<<g.grid, g.block, 0, stream>>>(y, x, planes, H, W, Ho, Wo, pairs);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

// pyr_up's adjoint: a 16 x 32 tile of dx reads about 37 x 69 cells of dy.
template <typename T>
void pyr_up_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t Ho,
                          index_t Wo, PyrTapsDevice rows, PyrTapsDevice cols,
                          cudaStream_t stream) {
  separable_gather<T, 16, 32, 40, 72>(dx, dy, planes, Ho, Wo, H, W, rows, cols, stream);
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
