// pool2d.cu: max and average pooling on the GPU, forward and backward, with
// the per-cell math of common/pool_index.h (the CPU kernels' rules: ties to
// the first cell in window order, NaN wins, padding never wins, PyTorch's
// divisors).
//
// Forward: one thread per output cell (row_grid.cuh). The common 2x2,
// stride-2, unpadded window (max and average) has a fast path when the row
// length and the pointers allow vector accesses: each thread reads one
// 16-byte chunk of each of the two input rows of an output row (4 floats
// or 2 doubles) and writes the outputs they make with one vector store.
// Backward, all without atomics on the data:
//  - 2x2 fast path (max and average): each thread takes a chunk of outputs
//    of one output row and writes the two input rows they cover with
//    vector stores; every input cell lies in exactly one window, so its
//    gather has one term (0 + that term, as in the general gather). The max
//    version checks each index as it reads it (the check kernel below
//    folded in).
//  - average: each input cell gathers dy / divisor over the windows that
//    cover it (pool_covering_range), in the CPU kernel's order.
//  - max, geometry known: each input cell gathers the dy whose index names
//    it, over the windows whose dilated span covers it, output position
//    ascending (the order of the CPU's scatter). A check kernel flags
//    indices outside the plane, and indices outside their own window's
//    span (which the gather would miss: the caller then falls back to the
//    ordered kernel below).
//  - max, ordered, for indices that need not come from any window: one
//    block per plane (when an int32 per input cell fits in shared memory)
//    records in shared memory the last output naming each cell and whether
//    any cell is named twice. Without repeats every sum has one term, and
//    each cell gathers 0 + dy of its output (or 0). With repeats, or
//    without room in shared memory, one warp per plane walks dy in flat
//    order, 32 at a time, and adds lanes that name the same cell one after
//    another in lane order (__match_any_sync ranks), i.e. exactly the CPU's
//    sequence of additions.
// Every index is range-checked before use; a bad one is never dereferenced.
#include "check.cuh"
#include "index_flag.cuh"
#include "plane_block.cuh"
#include "pool2d.h"
#include "row_grid.cuh"
#include "vec.cuh"

namespace striate {

namespace {

// Cells of one 16-byte load and the outputs they make in the 2x2 fast paths.
template <typename T>
constexpr int kCellsPerLoad = kPer16<T>;
template <typename T>
constexpr int kOutputsPerLoad = kPer16<T> / 2;

// Chunk q (cells [q*L, q*L + L), L = kCellsPerLoad) of the two input rows
// 2*oh (a) and 2*oh + 1 (b) of one output row of the 2x2 fast paths.
template <typename T>
struct RowPair {
  Vec<T, kCellsPerLoad<T>> a, b;
};

template <typename T>
STRIATE_HD inline RowPair<T> load_row_pair(const T* plane, index_t W, index_t oh, index_t q) {
  constexpr int L = kCellsPerLoad<T>;
  const T* r0 = plane + 2 * oh * W + q * L;
  return {load_vec<L>(r0), load_vec<L>(r0 + W)};
}

// Output row oh, outputs [q*O, q*O + O) of the 2x2 / stride-2 / unpadded max
// pool (O = kOutputsPerLoad), from chunk q of input rows 2*oh and 2*oh + 1.
// The last row of a ceil_mode pool over an odd height has no second input
// row and goes through max_pool_cell. Needs W % (2*O) == 0, plane 16-byte
// aligned, Wo == W / 2.
template <typename T>
STRIATE_HD inline void max_pool_2x2_chunk(const T* plane, const Pool2dGeometry& g, index_t oh,
                                          index_t q, Vec<T, kOutputsPerLoad<T>>* out,
                                          Vec<int64_t, kOutputsPerLoad<T>>* out_index) {
  constexpr int L = kCellsPerLoad<T>, O = kOutputsPerLoad<T>;
  if (2 * oh + 1 < g.H) {
    const RowPair<T> r = load_row_pair(plane, g.W, oh, q);
    for (int t = 0; t < O; ++t)
      max_pool_2x2_cell(r.a.v[2 * t], r.a.v[2 * t + 1], r.b.v[2 * t], r.b.v[2 * t + 1], 2 * oh,
                        q * L + 2 * t, g.W, &out->v[t], &out_index->v[t]);
  } else {
    for (int t = 0; t < O; ++t)
      max_pool_cell(plane, g, oh, q * O + t, &out->v[t], &out_index->v[t]);
  }
}

// The same outputs of the 2x2 average pool: avg_pool_cell's sum (row-major
// window order) and divisor, which is 4 (or the override) for every window
// with two input rows; the last row of a ceil_mode pool over an odd height
// goes through avg_pool_cell.
template <typename T>
STRIATE_HD inline void avg_pool_2x2_chunk(const T* plane, const Pool2dGeometry& g, index_t oh,
                                          index_t q, bool count_include_pad,
                                          index_t divisor_override,
                                          Vec<T, kOutputsPerLoad<T>>* out) {
  constexpr int O = kOutputsPerLoad<T>;
  if (2 * oh + 1 < g.H) {
    const RowPair<T> r = load_row_pair(plane, g.W, oh, q);
    const T divisor = T(divisor_override > 0 ? divisor_override : 4);
    for (int t = 0; t < O; ++t) {
      T sum = T(0);
      sum += r.a.v[2 * t];
      sum += r.a.v[2 * t + 1];
      sum += r.b.v[2 * t];
      sum += r.b.v[2 * t + 1];
      out->v[t] = sum / divisor;
    }
  } else {
    for (int t = 0; t < O; ++t)
      out->v[t] = avg_pool_cell(plane, g, oh, q * O + t, count_include_pad, divisor_override);
  }
}

// Backward of the 2x2 fast path: dx over chunk q of input rows 2*oh (a) and
// 2*oh + 1 (b) from the outputs [q*O, q*O + O) of row oh (dyp: dy's plane).
// Each of these cells lies in exactly one window, so avg_pool_gather_cell
// has one term: 0 + dy / divisor, the divisor depending on oh only here
// (every window spans two whole columns).
template <typename T>
STRIATE_HD inline RowPair<T> avg_pool_2x2_backward_chunk(const T* dyp, const Pool2dGeometry& g,
                                                         index_t oh, index_t q,
                                                         bool count_include_pad,
                                                         index_t divisor_override) {
  constexpr int O = kOutputsPerLoad<T>;
  const AvgWindow win = avg_pool_window(g, oh, q * O, count_include_pad, divisor_override);
  const Vec<T, O> d = load_vec<O>(dyp + oh * g.Wo + q * O);
  RowPair<T> r;
  for (int t = 0; t < O; ++t) {
    T v = T(0);
    if (win.divisor > 0) v += d.v[t] / T(win.divisor);
    r.a.v[2 * t] = r.a.v[2 * t + 1] = r.b.v[2 * t] = r.b.v[2 * t + 1] = v;
  }
  return r;
}

// The max version (dyp, ip: dy's and the indices' plane): a cell receives
// 0 + dy of its window's output when the index names it, as in
// max_pool_gather_cell. status[t] is max_pool_index_status's code for
// output t: 0 inside its window, 1 outside the plane, 2 in the plane but
// outside the window.
template <typename T>
STRIATE_HD inline RowPair<T> max_pool_2x2_backward_chunk(const T* dyp, const int64_t* ip,
                                                         const Pool2dGeometry& g, index_t oh,
                                                         index_t q,
                                                         int status[kOutputsPerLoad<T>]) {
  constexpr int L = kCellsPerLoad<T>, O = kOutputsPerLoad<T>;
  const Vec<int64_t, O> idx = load_vec<O>(ip + oh * g.Wo + q * O);
  const Vec<T, O> d = load_vec<O>(dyp + oh * g.Wo + q * O);
  const bool two_rows = 2 * oh + 1 < g.H;
  RowPair<T> r;
  for (int t = 0; t < O; ++t) {
    const int64_t c = 2 * oh * g.W + q * L + 2 * t, i = idx.v[t];  // c: the window's first cell
    const T v = T(0) + d.v[t];
    r.a.v[2 * t] = i == c ? v : T(0);
    r.a.v[2 * t + 1] = i == c + 1 ? v : T(0);
    r.b.v[2 * t] = i == c + g.W ? v : T(0);
    r.b.v[2 * t + 1] = i == c + g.W + 1 ? v : T(0);
    const bool inside = i == c || i == c + 1 || (two_rows && (i == c + g.W || i == c + g.W + 1));
    status[t] = inside ? 0 : (i < 0 || i >= g.H * g.W) ? 1 : 2;
  }
  return r;
}

// Stores a backward chunk into dx's plane: row 2*oh, row 2*oh + 1 when it
// exists, and zeros in the rows below the last window (odd H, floor mode),
// which no window covers.
template <typename T>
STRIATE_HD inline void store_2x2_backward_chunk(T* dxp, const Pool2dGeometry& g, index_t oh,
                                                index_t q, const RowPair<T>& r) {
  constexpr int L = kCellsPerLoad<T>;
  T* top = dxp + 2 * oh * g.W + q * L;
  store_vec(top, r.a);
  if (2 * oh + 1 < g.H) store_vec(top + g.W, r.b);
  if (oh == g.Ho - 1)
    for (index_t h = 2 * g.Ho; h < g.H; ++h) store_vec(dxp + h * g.W + q * L, Vec<T, L>{});
}

// Where index `idx` of output (oh, ow) stands: 0 inside the span of that
// output's (dilated) window, 1 outside the plane, 2 in the plane but outside
// the span (the gather below would not find it).
STRIATE_HD inline int max_pool_index_status(int64_t idx, const Pool2dGeometry& g, index_t oh,
                                            index_t ow) {
  if (idx < 0 || idx >= g.H * g.W) return 1;
  const index_t h = idx / g.W, w = idx - h * g.W;
  const index_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  const bool inside = h >= h0 && h <= h0 + (g.kh - 1) * g.dh && w >= w0 &&
                      w <= w0 + (g.kw - 1) * g.dw;
  return inside ? 0 : 2;
}

// dx at input cell (h, w) of one plane (dy, indices at dyp, ip): the dy
// whose index is h*W + w, over the outputs [oh0, oh1) x covering range of w
// whose dilated spans cover the cell, output position ascending.
template <typename T>
STRIATE_HD inline T max_pool_gather_cell(const T* dyp, const int64_t* ip, const Pool2dGeometry& g,
                                         index_t h, index_t oh0, index_t oh1, index_t w) {
  index_t ow0, ow1;
  pool_covering_range(w, (g.kw - 1) * g.dw + 1, g.sw, g.pw, g.Wo, &ow0, &ow1);
  const int64_t cell = h * g.W + w;
  T acc = T(0);
  for (index_t oh = oh0; oh < oh1; ++oh)
    for (index_t ow = ow0; ow < ow1; ++ow) {
      const index_t o = oh * g.Wo + ow;
      if (ip[o] == cell) acc += dyp[o];
    }
  return acc;
}

// dx at input cell (h, w) of one plane: dy / divisor summed over the windows
// [oh0, oh1) x covering range of w, in the CPU kernel's order (window row,
// then window column).
template <typename T>
STRIATE_HD inline T avg_pool_gather_cell(const T* dyp, const Pool2dGeometry& g, index_t oh0,
                                         index_t oh1, index_t w, bool count_include_pad,
                                         index_t divisor_override) {
  index_t ow0, ow1;
  pool_covering_range(w, g.kw, g.sw, g.pw, g.Wo, &ow0, &ow1);
  T acc = T(0);
  for (index_t oh = oh0; oh < oh1; ++oh)
    for (index_t ow = ow0; ow < ow1; ++ow) {
      const AvgWindow win = avg_pool_window(g, oh, ow, count_include_pad, divisor_override);
      if (win.divisor <= 0) continue;
      acc += dyp[oh * g.Wo + ow] / T(win.divisor);
    }
  return acc;
}

}  // namespace

// ------------------------------------------------------------------ max forward
// y, indices (planes * Ho rows, Wo)
template <typename T>
__global__ void max_pool2d_forward_kernel(T* __restrict__ y, int64_t* __restrict__ indices,
                                          const T* __restrict__ x, index_t planes,
                                          Pool2dGeometry g) {
  const index_t rows = planes * g.Ho;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    const T* plane = x + p * g.H * g.W;
    for (index_t ow = grid_col_begin(); ow < g.Wo; ow += grid_col_step())
      max_pool_cell(plane, g, oh, ow, y + r * g.Wo + ow, indices + r * g.Wo + ow);
  }
}

// The 2x2 fast path: (planes * Ho rows, W / kCellsPerLoad chunks)
template <typename T>
__global__ void max_pool2d_2x2_forward_kernel(T* __restrict__ y, int64_t* __restrict__ indices,
                                              const T* __restrict__ x, index_t planes,
                                              Pool2dGeometry g) {
  constexpr int O = kOutputsPerLoad<T>;
  const index_t rows = planes * g.Ho, chunks = g.W / kCellsPerLoad<T>;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    const T* plane = x + p * g.H * g.W;
    for (index_t q = grid_col_begin(); q < chunks; q += grid_col_step()) {
      Vec<T, O> out;
      Vec<int64_t, O> out_index;
      max_pool_2x2_chunk(plane, g, oh, q, &out, &out_index);
      store_vec(y + r * g.Wo + q * O, out);
      store_vec(indices + r * g.Wo + q * O, out_index);
    }
  }
}

// ----------------------------------------------------------------- max backward
// flags[0], flags[1] per output (planes * Ho rows, Wo)
__global__ void max_pool2d_check_indices_kernel(int64_t* flags, const int64_t* __restrict__ indices,
                                                index_t planes, Pool2dGeometry g) {
  const index_t rows = planes * g.Ho;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t oh = r % g.Ho;
    for (index_t ow = grid_col_begin(); ow < g.Wo; ow += grid_col_step()) {
      const index_t pos = r * g.Wo + ow;
      const int status = max_pool_index_status(indices[pos], g, oh, ow);
      if (status != 0) flag_bad_position(flags + (status - 1), pos);
    }
  }
}

// dx (planes * H rows, W)
template <typename T>
__global__ void max_pool2d_backward_gather_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                                  const int64_t* __restrict__ indices,
                                                  index_t planes, Pool2dGeometry g) {
  const index_t rows = planes * g.H, out_plane = g.Ho * g.Wo;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.H, h = r - p * g.H;
    index_t oh0, oh1;
    pool_covering_range(h, (g.kh - 1) * g.dh + 1, g.sh, g.ph, g.Ho, &oh0, &oh1);
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * out_plane;
    for (index_t w = grid_col_begin(); w < g.W; w += grid_col_step())
      dx[r * g.W + w] = max_pool_gather_cell(dyp, ip, g, h, oh0, oh1, w);
  }
}

// The 2x2 fast path, index check included: dx (planes * Ho rows, W / L
// chunks; each step writes two input rows), flags as in the check kernel.
template <typename T>
__global__ void max_pool2d_2x2_backward_kernel(T* __restrict__ dx, int64_t* flags,
                                               const T* __restrict__ dy,
                                               const int64_t* __restrict__ indices,
                                               index_t planes, Pool2dGeometry g) {
  constexpr int O = kOutputsPerLoad<T>;
  const index_t rows = planes * g.Ho, chunks = g.W / kCellsPerLoad<T>, out_plane = g.Ho * g.Wo;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    for (index_t q = grid_col_begin(); q < chunks; q += grid_col_step()) {
      int status[O];
      const RowPair<T> v = max_pool_2x2_backward_chunk(dy + p * out_plane, indices + p * out_plane,
                                                       g, oh, q, status);
      for (int t = 0; t < O; ++t)
        if (status[t] != 0) flag_bad_position(flags + (status[t] - 1), r * g.Wo + q * O + t);
      store_2x2_backward_chunk(dx + p * g.H * g.W, g, oh, q, v);
    }
  }
}

// dx of plane p by one warp, in the CPU's order: zeros, then each round of
// the inner loop lets the lanes of rank `round` among those naming the same
// cell add their dy, so a cell named by several lanes of a chunk receives
// their values in lane (= flat output) order; __syncwarp orders the
// read-modify-writes between rounds and chunks.
template <typename T>
__device__ inline void max_pool_ordered_plane(T* dxp, int64_t* flag, const T* dyp,
                                              const int64_t* ip, index_t p, index_t in_plane,
                                              index_t out_plane) {
  const unsigned lane = threadIdx.x % 32;
  for (index_t i = lane; i < in_plane; i += 32) dxp[i] = T(0);
  __syncwarp();
  for (index_t base = 0; base < out_plane; base += 32) {
    const index_t o = base + lane;
    const int64_t idx = o < out_plane ? ip[o] : 0;
    const bool ok = o < out_plane && idx >= 0 && idx < in_plane;
    if (o < out_plane && !ok) flag_bad_position(flag, p * out_plane + o);
    const T v = ok ? dyp[o] : T(0);
    const unsigned peers = __match_any_sync(0xffffffffu, ok ? idx : (int64_t)-1);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    for (int round = 0; __any_sync(0xffffffffu, ok && rank >= round); ++round) {
      if (ok && rank == round) dxp[idx] += v;
      __syncwarp();
    }
  }
}

// One warp per plane.
template <typename T>
__global__ void max_pool2d_backward_ordered_kernel(T* __restrict__ dx, int64_t* flag,
                                                   const T* __restrict__ dy,
                                                   const int64_t* __restrict__ indices,
                                                   index_t planes, index_t in_plane,
                                                   index_t out_plane) {
  const index_t warps = (index_t)gridDim.x * (blockDim.x / 32);
  for (index_t p = (index_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; p < planes;
       p += warps)
    max_pool_ordered_plane(dx + p * in_plane, flag, dy + p * out_plane, indices + p * out_plane,
                           p, in_plane, out_plane);
}

constexpr int kOrderedBatch = 4;  // cells per thread and step whose loads go out together

// One block per plane (grid-stride), dynamic shared memory: the last output
// naming each of the in_plane cells (int32), see the file comment.
template <typename T>
__global__ void __launch_bounds__(kPlaneThreads, kPlaneMinBlocks)
    max_pool2d_backward_ordered_map_kernel(T* __restrict__ dx, int64_t* flag,
                                           const T* __restrict__ dy,
                                           const int64_t* __restrict__ indices, index_t planes,
                                           index_t in_plane, index_t out_plane) {
  constexpr int B = kOrderedBatch;
  extern __shared__ int32_t cell_last[];
  __shared__ int repeated;
  const index_t step = B * (index_t)blockDim.x;
  for (index_t p = blockIdx.x; p < planes; p += gridDim.x) {
    T* dxp = dx + p * in_plane;
    const T* dyp = dy + p * out_plane;
    const int64_t* ip = indices + p * out_plane;
    for (index_t c = threadIdx.x; c < in_plane; c += blockDim.x) cell_last[c] = -1;
    if (threadIdx.x == 0) repeated = 0;
    __syncthreads();
    for (index_t o0 = threadIdx.x; o0 < out_plane; o0 += step) {
      int64_t idx[B];
#pragma unroll
      for (int k = 0; k < B; ++k) {
        const index_t o = o0 + k * (index_t)blockDim.x;
        idx[k] = o < out_plane ? ip[o] : 0;
      }
#pragma unroll
      for (int k = 0; k < B; ++k) {
        const index_t o = o0 + k * (index_t)blockDim.x;
        if (o >= out_plane) continue;
        if (idx[k] < 0 || idx[k] >= in_plane)
          flag_bad_position(flag, p * out_plane + o);
        else if (atomicMax(&cell_last[idx[k]], (int32_t)o) >= 0)
          repeated = 1;
      }
    }
    __syncthreads();
    if (!repeated) {
      for (index_t c0 = threadIdx.x; c0 < in_plane; c0 += step) {
        T v[B];
#pragma unroll
        for (int k = 0; k < B; ++k) {
          const index_t c = c0 + k * (index_t)blockDim.x;
          const int32_t o = c < in_plane ? cell_last[c] : -1;
          v[k] = o >= 0 ? T(0) + dyp[o] : T(0);
        }
#pragma unroll
        for (int k = 0; k < B; ++k) {
          const index_t c = c0 + k * (index_t)blockDim.x;
          if (c < in_plane) dxp[c] = v[k];
        }
      }
    } else if (threadIdx.x < 32) {
      max_pool_ordered_plane(dxp, flag, dyp, ip, p, in_plane, out_plane);
    }
    __syncthreads();  // cell_last and repeated are reset for the next plane
  }
}

// ---------------------------------------------------------------------- average
// y (planes * Ho rows, Wo)
template <typename T>
__global__ void avg_pool2d_forward_kernel(T* __restrict__ y, const T* __restrict__ x,
                                          index_t planes, Pool2dGeometry g,
                                          bool count_include_pad, index_t divisor_override) {
  const index_t rows = planes * g.Ho;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    const T* plane = x + p * g.H * g.W;
    for (index_t ow = grid_col_begin(); ow < g.Wo; ow += grid_col_step())
      y[r * g.Wo + ow] = avg_pool_cell(plane, g, oh, ow, count_include_pad, divisor_override);
  }
}

// The 2x2 fast path: y (planes * Ho rows, W / L chunks)
template <typename T>
__global__ void avg_pool2d_2x2_forward_kernel(T* __restrict__ y, const T* __restrict__ x,
                                              index_t planes, Pool2dGeometry g,
                                              bool count_include_pad, index_t divisor_override) {
  constexpr int O = kOutputsPerLoad<T>;
  const index_t rows = planes * g.Ho, chunks = g.W / kCellsPerLoad<T>;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    const T* plane = x + p * g.H * g.W;
    for (index_t q = grid_col_begin(); q < chunks; q += grid_col_step()) {
      Vec<T, O> out;
      avg_pool_2x2_chunk(plane, g, oh, q, count_include_pad, divisor_override, &out);
      store_vec(y + r * g.Wo + q * O, out);
    }
  }
}

// dx (planes * H rows, W)
template <typename T>
__global__ void avg_pool2d_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                           index_t planes, Pool2dGeometry g,
                                           bool count_include_pad, index_t divisor_override) {
  const index_t rows = planes * g.H;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.H, h = r - p * g.H;
    index_t oh0, oh1;
    pool_covering_range(h, g.kh, g.sh, g.ph, g.Ho, &oh0, &oh1);
    const T* dyp = dy + p * g.Ho * g.Wo;
    for (index_t w = grid_col_begin(); w < g.W; w += grid_col_step())
      dx[r * g.W + w] = avg_pool_gather_cell(dyp, g, oh0, oh1, w, count_include_pad,
                                             divisor_override);
  }
}

// The 2x2 fast path: dx (planes * Ho rows, W / L chunks; each step writes
// two input rows)
template <typename T>
__global__ void avg_pool2d_2x2_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                               index_t planes, Pool2dGeometry g,
                                               bool count_include_pad, index_t divisor_override) {
  const index_t rows = planes * g.Ho, chunks = g.W / kCellsPerLoad<T>;
  for (index_t r = grid_row_begin(); r < rows; r += grid_row_step()) {
    const index_t p = r / g.Ho, oh = r - p * g.Ho;
    for (index_t q = grid_col_begin(); q < chunks; q += grid_col_step())
      store_2x2_backward_chunk(dx + p * g.H * g.W, g, oh, q,
                               avg_pool_2x2_backward_chunk(dy + p * g.Ho * g.Wo, g, oh, q,
                                                           count_include_pad, divisor_override));
  }
}

// -------------------------------------------------------------------- launchers
namespace {

// The 2x2 fast paths apply: the geometry, whole 16-byte chunks per input row,
// and pointers aligned for the vector accesses: `cells` (x or dx) to 16
// bytes, `outs` (y or dy) and `indices` (when given) to one output vector.
template <typename T>
bool pool_2x2_applies(const Pool2dGeometry& g, const T* cells, const T* outs,
                      const int64_t* indices) {
  constexpr int L = kCellsPerLoad<T>, O = kOutputsPerLoad<T>;
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 &&
         g.dh == 1 && g.dw == 1 && g.W % L == 0 && g.Wo * 2 == g.W && aligned(cells, 16) &&
         aligned(outs, sizeof(T) * O) &&
         (indices == nullptr || aligned(indices, sizeof(int64_t) * O));
}

// (planes * Ho output rows, W / L chunks): the launch of every 2x2 fast path.
template <typename T>
RowGrid pool_2x2_grid(index_t planes, const Pool2dGeometry& g) {
  return row_grid(planes * g.Ho, g.W / kCellsPerLoad<T>);
}

}  // namespace

template <typename T>
void max_pool2d_forward_cuda(T* y, int64_t* indices, const T* x, index_t planes,
                             const Pool2dGeometry& g, cudaStream_t stream) {
  if (planes * g.Ho * g.Wo == 0) return;
  if (pool_2x2_applies(g, x, y, indices)) {
    const RowGrid rg = pool_2x2_grid<T>(planes, g);
    max_pool2d_2x2_forward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(y, indices, x, planes, g);
  } else {
    const RowGrid rg = row_grid(planes * g.Ho, g.Wo);
    max_pool2d_forward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(y, indices, x, planes, g);
  }
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void max_pool2d_backward_cuda(T* dx, int64_t* flags, const T* dy, const int64_t* indices,
                              index_t planes, const Pool2dGeometry& g, cudaStream_t stream) {
  if (planes * g.H * g.W == 0) return;
  if (g.Ho * g.Wo > 0 && pool_2x2_applies(g, dx, dy, indices)) {
    const RowGrid rg = pool_2x2_grid<T>(planes, g);
    max_pool2d_2x2_backward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(dx, flags, dy, indices,
                                                                        planes, g);
    STRIATE_CUDA_CHECK(cudaGetLastError());
    return;
  }
  if (planes * g.Ho * g.Wo > 0) {
    const RowGrid rg = row_grid(planes * g.Ho, g.Wo);
    max_pool2d_check_indices_kernel<<<rg.grid, rg.block, 0, stream>>>(flags, indices, planes, g);
    STRIATE_CUDA_CHECK(cudaGetLastError());
  }
  const RowGrid rg = row_grid(planes * g.H, g.W);
  max_pool2d_backward_gather_kernel<T><<<rg.grid, rg.block, 0, stream>>>(dx, dy, indices, planes,
                                                                         g);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void max_pool2d_backward_ordered_cuda(T* dx, int64_t* flag, const T* dy, const int64_t* indices,
                                      index_t planes, const Pool2dGeometry& g,
                                      cudaStream_t stream) {
  if (planes * g.H * g.W == 0) return;
  const index_t in_plane = g.H * g.W, out_plane = g.Ho * g.Wo;
  if (out_plane <= (index_t)INT32_MAX && plane_map_fits(in_plane)) {
    launch_with_plane_map(max_pool2d_backward_ordered_map_kernel<T>, planes, in_plane, stream, dx,
                          flag, dy, indices, planes, in_plane, out_plane);
    return;
  }
  const int threads = 256, warps_per_block = threads / 32;
  const index_t blocks = (planes + warps_per_block - 1) / warps_per_block;
  max_pool2d_backward_ordered_kernel<T>
      <<<(unsigned)(blocks < 0x7fffffff ? blocks : 0x7fffffff), threads, 0, stream>>>(
          dx, flag, dy, indices, planes, in_plane, out_plane);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void avg_pool2d_forward_cuda(T* y, const T* x, index_t planes, const Pool2dGeometry& g,
                             bool count_include_pad, index_t divisor_override,
                             cudaStream_t stream) {
  if (planes * g.Ho * g.Wo == 0) return;
  if (pool_2x2_applies(g, x, y, (const int64_t*)nullptr)) {
    const RowGrid rg = pool_2x2_grid<T>(planes, g);
    avg_pool2d_2x2_forward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(
        y, x, planes, g, count_include_pad, divisor_override);
  } else {
    const RowGrid rg = row_grid(planes * g.Ho, g.Wo);
    avg_pool2d_forward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(
        y, x, planes, g, count_include_pad, divisor_override);
  }
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void avg_pool2d_backward_cuda(T* dx, const T* dy, index_t planes, const Pool2dGeometry& g,
                              bool count_include_pad, index_t divisor_override,
                              cudaStream_t stream) {
  if (planes * g.H * g.W == 0) return;
  if (g.Ho * g.Wo > 0 && pool_2x2_applies(g, dx, dy, (const int64_t*)nullptr)) {
    const RowGrid rg = pool_2x2_grid<T>(planes, g);
    avg_pool2d_2x2_backward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(
        dx, dy, planes, g, count_include_pad, divisor_override);
  } else {
    const RowGrid rg = row_grid(planes * g.H, g.W);
    avg_pool2d_backward_kernel<T><<<rg.grid, rg.block, 0, stream>>>(
        dx, dy, planes, g, count_include_pad, divisor_override);
  }
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

#define STRIATE_INSTANTIATE_POOL2D_CUDA(T)                                                     \
  template void max_pool2d_forward_cuda<T>(T*, int64_t*, const T*, index_t,                    \
                                           const Pool2dGeometry&, cudaStream_t);               \
  template void max_pool2d_backward_cuda<T>(T*, int64_t*, const T*, const int64_t*, index_t,   \
                                            const Pool2dGeometry&, cudaStream_t);              \
  template void max_pool2d_backward_ordered_cuda<T>(T*, int64_t*, const T*, const int64_t*,    \
                                                    index_t, const Pool2dGeometry&,            \
                                                    cudaStream_t);                             \
  template void avg_pool2d_forward_cuda<T>(T*, const T*, index_t, const Pool2dGeometry&, bool, \
                                           index_t, cudaStream_t);                             \
  template void avg_pool2d_backward_cuda<T>(T*, const T*, index_t, const Pool2dGeometry&,      \
                                            bool, index_t, cudaStream_t);
STRIATE_INSTANTIATE_POOL2D_CUDA(float)
STRIATE_INSTANTIATE_POOL2D_CUDA(double)

}  // namespace striate
