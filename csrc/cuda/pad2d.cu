// pad2d.cu: constant / reflect / replicate / circular padding on the GPU and
// its adjoint, with the coordinate rule of the CPU kernel
// (pad_source_index in common/pad_index.h).
//
// Forward: rows of the padded planes (row_grid.cuh), kPadUnroll cells of a
// row per thread and step, each read through pad_source_index; the
// thread's loads all go out before its stores.
// Backward: a gather, no atomics. Each dx cell enumerates, per axis, the
// padded positions that read it (pad_preimage: at most two arithmetic
// progressions, or one contiguous run for replicate) and sums dy over
// their product in the CPU kernel's order (padded row ascending, then
// padded column ascending), so the result is deterministic and matches the
// CPU's sums term for term. The work is one read per dy cell whatever the
// pad sizes. Each thread takes kPadUnroll cells of a row per step and loads
// the first term of every cell's sum before adding any, so that those
// loads are in flight together; a cell whose row and column preimages are
// single (the interior) is then 0 + that term.
#include "check.cuh"
#include "common/pad_index.h"
#include "pad2d.h"
#include "row_grid.cuh"

namespace striate {

namespace {

constexpr int kPadUnroll = 4;

// x mod m for x >= 0, m >= 1, without a division in the usual x < 2m case.
STRIATE_HD inline index_t mod_nonneg(index_t x, index_t m) {
  return x < m ? x : x < 2 * m ? x - m : x % m;
}

// The padded positions i in [0, len) with pad_source_index(i - before, n,
// mode) == s, i.e. the ones that read source position s: the progressions
// a, a + step, ... and b, b + step, ... below `end` (b == end when there
// is only one). Never empty: i = s + before is always one of them.
struct PadPreimage {
  index_t a, b, step, end;
};

STRIATE_HD inline PadPreimage pad_preimage(index_t s, index_t n, index_t before, index_t len,
                                           int mode) {
  PadPreimage r;
  r.a = s + before;
  r.b = -1;
  r.step = 1;
  r.end = len;
  switch (mode) {
    case PAD_REPLICATE:  // one run: the clamped border joins the edge cell
      if (s == 0) r.a = 0;
      if (s != n - 1) r.end = s + before + 1;
      break;
    case PAD_CIRCULAR:  // i - before == s (mod n)
      r.a = mod_nonneg(s + before, n);
      r.step = n;
      break;
    case PAD_REFLECT:  // reflect101 has period 2(n-1): i - before == +-s (mod period)
      if (n == 1) {
        r.a = 0;
        break;
      }
      r.step = 2 * (n - 1);
      r.a = mod_nonneg(s + before, r.step);
      if (s >= 1 && s <= n - 2) r.b = mod_nonneg(r.step - s + before, r.step);
      break;
    default:  // constant: the interior cell only
      r.end = r.a + 1;
  }
  if (r.b < 0) r.b = r.end;
  return r;
}

// The smallest element of the preimage (which is never empty).
STRIATE_HD inline index_t preimage_first(const PadPreimage& pre) { return pre.a < pre.b ? pre.a : pre.b; }

// The preimage has one element (so the cell's sum is 0 + its first term).
STRIATE_HD inline bool preimage_single(const PadPreimage& pre) {
  return pre.b >= pre.end && pre.a + pre.step >= pre.end;
}

// Calls f(i) for every i of the preimage in increasing order.
template <typename F>
STRIATE_HD inline void for_each_preimage(const PadPreimage& pre, F f) {
  index_t ia = pre.a, ib = pre.b;
  for (index_t i = ia < ib ? ia : ib; i < pre.end; i = ia < ib ? ia : ib) {
    f(i);
    if (i == ia)
      ia += pre.step;
    else
      ib += pre.step;
  }
}

// dx at one cell of a plane: dy (Ho, Wo) summed over the product of the
// cell's row and column preimages, padded row ascending, then column. The
// first term, dy at (preimage_first(row_pre), preimage_first(col_pre)), is
// passed in by the caller, which loaded it ahead.
template <typename T>
STRIATE_HD inline T pad2d_gather_cell(const T* dyp, index_t Wo, const PadPreimage& row_pre,
                                      const PadPreimage& col_pre, T first) {
  T acc = T(0);
  bool at_first = true;
  for_each_preimage(row_pre, [&](index_t i) {
    const T* dyrow = dyp + i * Wo;
    for_each_preimage(col_pre, [&](index_t j) {
      acc += at_first ? first : dyrow[j];
      at_first = false;
    });
  });
  return acc;
}

}  // namespace

// y (planes * Ho rows, Wo)
template <typename T>
__global__ void pad2d_forward_kernel(T* __restrict__ y, const T* __restrict__ x, index_t planes,
                                     index_t H, index_t W, index_t pl, index_t pt, index_t Ho,
                                     index_t Wo, int mode, T value) {
  constexpr int V = kPadUnroll;
  const index_t rows = planes * Ho;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / Ho, h = pad_source_index(r - p * Ho - pt, H, mode);
    const T* src = x + (p * H + (h < 0 ? 0 : h)) * W;  // read only when h >= 0
    T* dst = y + r * Wo;
    for (index_t j0 = grid_col_begin_unrolled<V>(); j0 < Wo; j0 += grid_col_step_unrolled<V>()) {
      T v[V];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const index_t j = j0 + k * (index_t)blockDim.x;
        const index_t w = h < 0 || j >= Wo ? -1 : pad_source_index(j - pl, W, mode);
        v[k] = w < 0 ? value : src[w];
      }
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const index_t j = j0 + k * (index_t)blockDim.x;
        if (j < Wo) dst[j] = v[k];
      }
    }
  }
}

// dx (planes * H rows, W)
template <typename T>
__global__ void __launch_bounds__(256, 4) pad2d_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                      index_t planes, index_t H, index_t W, index_t pl,
                                      index_t pt, index_t Ho, index_t Wo, int mode) {
  constexpr int V = kPadUnroll;
  const index_t rows = planes * H;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / H;
    const PadPreimage row_pre = pad_preimage(r - p * H, H, pt, Ho, mode);
    const T* dyp = dy + p * Ho * Wo;
    const T* first_row = dyp + preimage_first(row_pre) * Wo;
    const bool row_single = preimage_single(row_pre);
    for (index_t w0 = grid_col_begin_unrolled<V>(); w0 < W; w0 += grid_col_step_unrolled<V>()) {
      T first[V];
      bool single[V];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const index_t w = w0 + k * (index_t)blockDim.x;
        first[k] = T(0);
        single[k] = true;
        if (w < W) {
          const PadPreimage col_pre = pad_preimage(w, W, pl, Wo, mode);
          first[k] = first_row[preimage_first(col_pre)];
          single[k] = row_single && preimage_single(col_pre);
        }
      }
#pragma unroll
      for (int k = 0; k < V; ++k) {
        const index_t w = w0 + k * (index_t)blockDim.x;
        if (w < W)
          dx[r * W + w] = single[k] ? T(0) + first[k]
                                    : pad2d_gather_cell(dyp, Wo, row_pre,
                                                        pad_preimage(w, W, pl, Wo, mode), first[k]);
      }
    }
  }
}

template <typename T>
void pad2d_forward_cuda(T* y, const T* x, index_t planes, index_t H, index_t W, index_t pl,
                        index_t pr, index_t pt, index_t pb, int mode, T value,
                        cudaStream_t stream) {
  const index_t Ho = H + pt + pb, Wo = W + pl + pr;
  if (planes * Ho * Wo == 0) return;
  const RowGrid g = row_grid_unrolled<kPadUnroll>(planes * Ho, Wo);
  pad2d_forward_kernel<T><<<g.grid, g.block, 0, stream>>>(y, x, planes, H, W, pl, pt, Ho, Wo,
                                                          mode, value);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void pad2d_backward_cuda(T* dx, const T* dy, index_t planes, index_t H, index_t W, index_t pl,
                         index_t pr, index_t pt, index_t pb, int mode, cudaStream_t stream) {
  const index_t Ho = H + pt + pb, Wo = W + pl + pr;
  if (planes * H * W == 0) return;
  const RowGrid g = row_grid_unrolled<kPadUnroll>(planes * H, W);
  pad2d_backward_kernel<T><<<g.grid, g.block, 0, stream>>>(dx, dy, planes, H, W, pl, pt, Ho, Wo,
                                                           mode);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

#define STRIATE_INSTANTIATE_PAD2D_CUDA(T)                                                     \
  template void pad2d_forward_cuda<T>(T*, const T*, index_t, index_t, index_t, index_t,       \
                                      index_t, index_t, index_t, int, T, cudaStream_t);       \
  template void pad2d_backward_cuda<T>(T*, const T*, index_t, index_t, index_t, index_t,      \
                                       index_t, index_t, index_t, int, cudaStream_t);
STRIATE_INSTANTIATE_PAD2D_CUDA(float)
STRIATE_INSTANTIATE_PAD2D_CUDA(double)

}  // namespace striate
