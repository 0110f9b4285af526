// conv2d.cpp: 2-D cross-correlation on the CPU, forward and backward, on
// striate's blocked GEMM (gemm.cpp). P = Ho*Wo, CgKK = C/groups * kh * kw.
//   forward        y[n,g]  (Kg x P)    = w[g] (Kg x CgKK) * col[n,g] (CgKK x P)
//   backward data  dcol    (CgKK x P)  = w[g]^T * dy[n,g], then col2im (+=) into dx
//   backward wt.   dw[g]   (Kg x CgKK) = sum_n dy[n,g] * col[n,g]^T
// The weights are packed once per call for every image's GEMM, and the
// column matrix col is packed straight into the GEMM's panels (never written
// whole). Shapes take faster routes to the same products:
// - stride 1 (and 3x3 stride 2) with 8 or more input channels: the direct
//   kernels, no GEMM at all: register tiles of output positions x channel
//   vectors fed straight from zero-padded planes (backward data as the
//   forward with flipped weights; the weight gradient of 3x3 and 2x2 kernels
//   with every tap in registers);
// - other stride-1 layers: a zero-padded copy of each image whose GEMM rows are contiguous
//   runs ("wide" output rows); backward data is the forward of dy with the
//   flipped weights (no col2im); the weight gradient packs the copy as A;
// - kernel a multiple of the stride: space-to-depth, then stride 1;
// - a kernel covering the whole unpadded input: one matrix product;
// - under 64 output positions per image: all images' columns side by side.
// Images are spread over the OpenMP threads when there are at least as many
// images as threads; otherwise each GEMM is split over the threads.
// conv2d_forward_reference_cpu is the plain loop nest the tests hold every
// route to (with PyTorch).
#include "conv2d.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <vector>

#include "common/shape.h"
#include "allocator.h"
#include "gemm.h"
#include "transpose.h"

namespace striate {

namespace {

bool is_pointwise(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pl == 0 &&
         g.Ho == g.H && g.Wo == g.W;
}

// Output columns [lo, hi) whose tap at input column ow*sw + w0 lies inside [0, W).
inline void valid_columns(const Conv2dGeometry& g, index_t w0, index_t* lo, index_t* hi) {
  *lo = std::min(g.Wo, w0 >= 0 ? 0 : (-w0 + g.sw - 1) / g.sw);
  *hi = std::max(*lo, std::min(g.Wo, (g.W - w0 + g.sw - 1) / g.sw));
}

// col[(c*kh + a)*kw + b][oh*Wo + ow] = x[c][oh*sh - pt + a*dh][ow*sw - pl + b*dw] (0 outside);
// rows are ld apart (ld = Ho*Wo for one image, N*Ho*Wo when all images sit side by side).
template <typename T>
void im2col(const T* x, index_t Cg, const Conv2dGeometry& g, T* col, index_t ld) {
  for (index_t c = 0; c < Cg; ++c)
    for (index_t a = 0; a < g.kh; ++a)
      for (index_t b = 0; b < g.kw; ++b) {
        T* row = col + ((c * g.kh + a) * g.kw + b) * ld;
        const index_t w0 = b * g.dw - g.pl;
        index_t lo, hi;
        valid_columns(g, w0, &lo, &hi);
        for (index_t oh = 0; oh < g.Ho; ++oh) {
          T* dst = row + oh * g.Wo;
          const index_t h = oh * g.sh - g.pt + a * g.dh;
          if (h < 0 || h >= g.H) {
            std::fill(dst, dst + g.Wo, T(0));
            continue;
          }
          const T* src = x + (c * g.H + h) * g.W + w0;
          std::fill(dst, dst + lo, T(0));
          if (g.sw == 1) {
            std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
          } else {
            for (index_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
          }
          std::fill(dst + hi, dst + g.Wo, T(0));
        }
      }
}

// The adjoint of im2col: x[c][h][w] += col[...] for every tap that read it.
template <typename T>
void col2im(const T* col, index_t Cg, const Conv2dGeometry& g, T* x, index_t ld) {
  for (index_t c = 0; c < Cg; ++c)
    for (index_t a = 0; a < g.kh; ++a)
      for (index_t b = 0; b < g.kw; ++b) {
        const T* row = col + ((c * g.kh + a) * g.kw + b) * ld;
        const index_t w0 = b * g.dw - g.pl;
        index_t lo, hi;
        valid_columns(g, w0, &lo, &hi);
        for (index_t oh = 0; oh < g.Ho; ++oh) {
          const index_t h = oh * g.sh - g.pt + a * g.dh;
          if (h < 0 || h >= g.H) continue;
          const T* src = row + oh * g.Wo;
          T* dst = x + (c * g.H + h) * g.W + w0;
          if (g.sw == 1) {
            for (index_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (index_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
          }
        }
      }
}

// The im2col matrix of Cg channels of several images as an implicit GEMM B (gemm.h's BPacker):
//   B(k, j) = x[n][c][oh*sh - pt + a*dh][ow*sw - pl + b*dw] (0 outside),
//   k = (c*kh + a)*kw + b, j = n*Ho*Wo + oh*Wo + ow,
// with x pointing at channel 0 of image 0 and images image_stride apart. Each
// row k of the block is built as im2col builds it (runs of one output row, a
// memcpy when sw == 1) in a small buffer that stays in L1, then dealt into
// the panels: no column matrix is written to memory and read back.
template <typename T>
struct ColumnSource {
  const T* x;
  index_t image_stride;
  const Conv2dGeometry* g;
};

template <typename T>
void pack_columns(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* Bp) {
  const ColumnSource<T>& s = *static_cast<const ColumnSource<T>*>(ctx);
  const Conv2dGeometry& g = *s.g;
  constexpr index_t nr = gemm_panel_width<T>();
  const index_t P = g.Ho * g.Wo, taps = g.kh * g.kw;
  const index_t full = nc / nr, rest = nc - full * nr;
  T* row = static_cast<T*>(thread_scratch(4, sizeof(T) * nc));
  const index_t n0 = j0 / P, oh0 = (j0 % P) / g.Wo, ow0 = (j0 % P) % g.Wo;
  for (index_t kk = 0; kk < kc; ++kk) {
    const index_t k = k0 + kk, c = k / taps, a = (k % taps) / g.kw, b = k % g.kw;
    const index_t w0 = b * g.dw - g.pl;
    index_t lo, hi;
    valid_columns(g, w0, &lo, &hi);
    index_t n = n0, oh = oh0, ow = ow0;
    for (index_t idx = 0; idx < nc;) {
      const index_t len = std::min(nc - idx, g.Wo - ow);
      const index_t h = oh * g.sh - g.pt + a * g.dh;
      T* d = row + idx - ow;  // d[t]: output column t of this run
      if (h < 0 || h >= g.H) {
        for (index_t t = ow; t < ow + len; ++t) d[t] = T(0);
      } else {
        const T* src = s.x + n * s.image_stride + (c * g.H + h) * g.W + w0;
        const index_t first = std::min(std::max(lo, ow), ow + len);
        const index_t last = std::min(std::max(hi, first), ow + len);
        // Runs are short in deep layers (a 4x4 map: 4 values): plain loops, no library calls.
        for (index_t t = ow; t < first; ++t) d[t] = T(0);
        if (g.sw == 1) {
          for (index_t t = first; t < last; ++t) d[t] = src[t];
        } else {
          for (index_t t = first; t < last; ++t) d[t] = src[t * g.sw];
        }
        for (index_t t = last; t < ow + len; ++t) d[t] = T(0);
      }
      idx += len;
      ow += len;
      if (ow == g.Wo) {
        ow = 0;
        if (++oh == g.Ho) {
          oh = 0;
          ++n;
        }
      }
    }
    T* dst = Bp + kk * nr;
    for (index_t p = 0; p < full; ++p, dst += kc * nr) std::memcpy(dst, row + p * nr, sizeof(T) * nr);
    if (rest) {
      std::memcpy(dst, row + full * nr, sizeof(T) * rest);
      std::fill(dst + rest, dst + nr, T(0));
    }
  }
}

// Every group's weights packed once as the GEMM's A, shared by all images:
// forward A = w[g] (Kg x CgKK); transposed (backward data) A = w[g]^T (CgKK x Kg).
template <typename T>
struct PackedWeights {
  index_t rows, depth, per_group;
  CachedBuffer<T> buffer;
  PackedWeights(const T* w, const Conv2dGeometry& g, bool transposed)
      : rows(transposed ? g.C / g.groups * g.kh * g.kw : g.K / g.groups),
        depth(transposed ? g.K / g.groups : g.C / g.groups * g.kh * g.kw),
        per_group(gemm_packed_a_rows(rows) * depth),
        buffer((size_t)(g.groups * per_group)) {
    const index_t stride = rows * depth;  // one group's weights, (Kg x CgKK) row-major
    for (index_t gi = 0; gi < g.groups; ++gi) {
      if (transposed)  // A(i, k) = w[g][k][i]
        gemm_pack_a_cpu(rows, depth, w + gi * stride, (index_t)1, rows, group(gi));
      else
        gemm_pack_a_cpu(rows, depth, w + gi * stride, depth, (index_t)1, group(gi));
    }
  }
  // Weights already in forward layout (groups of rows x depth, row-major).
  PackedWeights(const T* w, index_t groups, index_t rows_, index_t depth_)
      : rows(rows_), depth(depth_), per_group(gemm_packed_a_rows(rows) * depth),
        buffer((size_t)(groups * per_group)) {
    for (index_t gi = 0; gi < groups; ++gi)
      gemm_pack_a_cpu(rows, depth, w + gi * rows * depth, depth, (index_t)1, group(gi));
  }
  T* group(index_t gi) const { return buffer.get() + gi * per_group; }
};

template <typename T>
void gemm_prepacked_dispatch(bool parallel, index_t M, index_t N, index_t K, const T* Ap,
                             const BPacker<T>& B, T* C, index_t ldc) {
  if (parallel)
    gemm_prepacked_parallel_cpu(M, N, K, Ap, B, C, ldc, false);
  else
    gemm_prepacked_cpu(M, N, K, Ap, B, C, ldc, false);
}

// ------------------------------------------------------------------------
// Stride-1 convolutions on a padded copy ("wide" output rows). With the input
// of one image and group copied into xp (Cg x Hp x Wp, the padding made of
// zeros: Hp = Ho + dh*(kh-1), Wp = Wo + dw*(kw-1)), tap (c, a, b) of output
// position q = oh*Wp + ow reads xp[off(c, a, b) + q], off = (c*Hp + a*dh)*Wp
// + b*dw. Every row of the GEMM's B is then one contiguous run of xp, packed
// with plain copies instead of im2col's one run per output row; the GEMM
// writes Ho rows of Wp outputs (the last Wp - Wo of each are discarded), so it
// is used where Wp / Wo <= 3 / 2.

inline bool use_wide(const Conv2dGeometry& g) {
  return g.sh == 1 && g.sw == 1 && !is_pointwise(g) && 2 * (g.Wo + g.dw * (g.kw - 1)) <= 3 * g.Wo;
}

// The geometry of backward data as a convolution: for stride 1, dx is dy correlated with the
// weights flipped in both axes and with in/out channels swapped, padded by d*(k-1) - p.
Conv2dGeometry flipped_geometry(const Conv2dGeometry& g) {
  return Conv2dGeometry{g.N, g.K, g.Ho, g.Wo, g.C, g.H, g.W, g.kh, g.kw, 1, 1,
                        g.dh * (g.kh - 1) - g.pt, g.dw * (g.kw - 1) - g.pl, g.dh, g.dw, g.groups};
}

struct WideShape {
  index_t Hp, Wp, Nw;  // padded rows and columns; wide outputs (Ho - 1) * Wp + Wo
  explicit WideShape(const Conv2dGeometry& g)
      : Hp(g.Ho + g.dh * (g.kh - 1)), Wp(g.Wo + g.dw * (g.kw - 1)), Nw((g.Ho - 1) * Wp + g.Wo) {}
};

// xp[c][r][t] = x[c][r - pt][t - pl], 0 outside x; Cg channels of one image.
template <typename T>
void pad_planes(T* xp, const T* x, index_t Cg, const Conv2dGeometry& g, const WideShape& s) {
  const index_t lo = std::min(std::max<index_t>(g.pl, 0), s.Wp);           // first copied column
  const index_t hi = std::max(lo, std::min(s.Wp, g.W + g.pl));             // end of copied columns
  for (index_t c = 0; c < Cg; ++c)
    for (index_t r = 0; r < s.Hp; ++r) {
      T* dst = xp + (c * s.Hp + r) * s.Wp;
      const index_t h = r - g.pt;
      if (h < 0 || h >= g.H) {
        std::fill(dst, dst + s.Wp, T(0));
        continue;
      }
      std::fill(dst, dst + lo, T(0));
      std::memcpy(dst + lo, x + (c * g.H + h) * g.W + (lo - g.pl), sizeof(T) * (hi - lo));
      std::fill(dst + hi, dst + s.Wp, T(0));
    }
}

template <typename T>
struct WideSource {
  const T* xp;
  const index_t* offsets;  // off(k) for every row k of B
};

template <typename T>
void pack_wide(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* Bp) {
  const WideSource<T>& s = *static_cast<const WideSource<T>*>(ctx);
  constexpr index_t nr = gemm_panel_width<T>();
  for (index_t p0 = 0; p0 < nc; p0 += nr, Bp += nr * kc) {
    const index_t cols = std::min(nr, nc - p0);
    const T* src = s.xp + j0 + p0;
    if (cols == nr) {
      for (index_t kk = 0; kk < kc; ++kk) std::memcpy(Bp + kk * nr, src + s.offsets[k0 + kk], sizeof(T) * nr);
    } else {
      for (index_t kk = 0; kk < kc; ++kk) {
        std::memcpy(Bp + kk * nr, src + s.offsets[k0 + kk], sizeof(T) * cols);
        std::fill(Bp + kk * nr + cols, Bp + (kk + 1) * nr, T(0));
      }
    }
  }
}

// The weight gradient's A = the wide column matrix itself: A(i = r, k = q) = xp[off(r) + q].
template <typename T>
void pack_wide_rows(const void* ctx, index_t i0, index_t mc, index_t k0, index_t kc, T* Ap) {
  const WideSource<T>& s = *static_cast<const WideSource<T>*>(ctx);
  constexpr index_t mr = gemm_panel_rows();
  for (index_t p0 = 0; p0 < mc; p0 += mr, Ap += mr * kc) {
    const index_t rows = std::min(mr, mc - p0);
    for (index_t r = 0; r < mr; ++r) {
      if (r < rows) {
        const T* src = s.xp + s.offsets[i0 + p0 + r] + k0;
        for (index_t k = 0; k < kc; ++k) Ap[k * mr + r] = src[k];
      } else {
        for (index_t k = 0; k < kc; ++k) Ap[k * mr + r] = T(0);
      }
    }
  }
}

// dyw[k][oh * Wp + ow] = dy[k][oh][ow] for ow < Wo, 0 in the Wp - Wo columns between rows.
template <typename T>
void widen_rows(T* dyw, const T* dy, index_t Kg, const Conv2dGeometry& g, const WideShape& s) {
  for (index_t k = 0; k < Kg; ++k)
    for (index_t oh = 0; oh < g.Ho; ++oh) {
      T* dst = dyw + k * s.Nw + oh * s.Wp;
      std::memcpy(dst, dy + (k * g.Ho + oh) * g.Wo, sizeof(T) * g.Wo);
      if (oh + 1 < g.Ho) std::fill(dst + g.Wo, dst + s.Wp, T(0));
    }
}

// off(k) for the CgKK rows of B.
inline std::vector<index_t> wide_offsets(const Conv2dGeometry& g, const WideShape& s) {
  std::vector<index_t> off((size_t)(g.C / g.groups * g.kh * g.kw));
  size_t k = 0;
  for (index_t c = 0; c < g.C / g.groups; ++c)
    for (index_t a = 0; a < g.kh; ++a)
      for (index_t b = 0; b < g.kw; ++b) off[k++] = (c * s.Hp + a * g.dh) * s.Wp + b * g.dw;
  return off;
}

// Scratch values one image's wide pass takes: its padded planes and its wide output.
index_t wide_values(const Conv2dGeometry& g) {
  const WideShape s(g);
  const index_t planes[] = {g.C / g.groups, s.Hp, s.Wp}, out[] = {g.K / g.groups, s.Nw};
  const index_t a = checked_product(planes, 3), b = checked_product(out, 2);
  index_t total;
  if (a == kSizeOverflow || b == kSizeOverflow || !checked_add(a, b, &total)) return kSizeOverflow;
  return total;
}

// The first exception thrown by any iteration of an OpenMP loop (an
// exception must not leave a parallel region: that would terminate the
// process). A failed scratch allocation thus reaches Python as MemoryError.
class ParallelErrors {
 public:
  template <typename F>
  void run(F f) {
    try {
      f();
    } catch (...) {
#pragma omp critical(striate_parallel_errors)
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::exception_ptr first_;
};

// Runs body(n, use_parallel_gemm) for every image: images over threads when
// there are enough of them, otherwise one image at a time with threaded GEMMs.
template <typename F>
void for_each_image(index_t N, F body) {
  const int threads = omp_get_max_threads();
  if (N >= threads && threads > 1) {
    ParallelErrors errors;
#pragma omp parallel for schedule(static)
    for (index_t n = 0; n < N; ++n) errors.run([&] { body(n, false); });
    errors.rethrow();
  } else {
    for (index_t n = 0; n < N; ++n) body(n, true);
  }
}

template <typename T>
void gemm_dispatch(bool parallel, index_t M, index_t N, index_t K, const T* A, index_t rs_a,
                   index_t cs_a, const T* B, index_t rs_b, index_t cs_b, T* C, index_t ldc,
                   bool accumulate) {
  if (parallel)
    gemm_parallel_cpu(M, N, K, A, rs_a, cs_a, B, rs_b, cs_b, C, ldc, accumulate);
  else
    gemm_cpu(M, N, K, A, rs_a, cs_a, B, rs_b, cs_b, C, ldc, accumulate);
}

// ------------------------------------------------------------------------
// Batched columns: the columns of all N images side by side (CgKK x N*P), so
// that a layer with few output positions per image (deep layers of real
// networks: 4x4, 2x2) still runs one wide GEMM per group instead of N thin
// ones. out/dyt (Kg x N*P) hold the output or its gradient in that layout.

std::atomic<int> conv_strategy{CONV2D_AUTO};

// The columns of all images fit in this many bytes, or the per-image path runs.
constexpr size_t kBatchedBytes = size_t(256) << 20;
// Below this many output positions per image the per-image GEMMs are thin.
constexpr index_t kBatchedPositions = 64;

// Values the batched buffers hold: (CgKK + Kg) x N*P, or kSizeOverflow.
index_t batched_values(const Conv2dGeometry& g) {
  const index_t values[] = {g.C / g.groups * g.kh * g.kw + g.K / g.groups, g.N, g.Ho, g.Wo};
  return checked_product(values, 4);
}

bool use_batched(const Conv2dGeometry& g, size_t elem) {
  const int strategy = conv_strategy.load(std::memory_order_relaxed);
  if (strategy == CONV2D_PER_IMAGE) return false;
  const index_t values = batched_values(g);
  if (values == kSizeOverflow) return false;
  if (strategy == CONV2D_BATCHED) return true;
  return g.N > 1 && g.Ho * g.Wo < kBatchedPositions && (size_t)values <= kBatchedBytes / elem;
}

// out[k][n*P + p] = y[n][k0 + k][p] for the Kg output channels of one group.
template <typename T>
void gather_channels(T* out, const T* y, const Conv2dGeometry& g, index_t k0, index_t Kg) {
  const index_t P = g.Ho * g.Wo, NP = g.N * P;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t n = 0; n < g.N; ++n)
    for (index_t k = 0; k < Kg; ++k)
      std::memcpy(out + k * NP + n * P, y + (n * g.K + k0 + k) * P, sizeof(T) * P);
}

template <typename T>
void im2col_all(const T* x, index_t gi, const Conv2dGeometry& g, T* col) {
  const index_t Cg = g.C / g.groups, NP = g.N * g.Ho * g.Wo;
#pragma omp parallel for schedule(static)
  for (index_t n = 0; n < g.N; ++n)
    im2col(x + (n * g.C + gi * Cg) * g.H * g.W, Cg, g, col + n * g.Ho * g.Wo, NP);
}

// The sizes and the two buffers every batched pass uses (the calling thread's scratch).
template <typename T>
struct Batched {
  index_t Cg, Kg, P, NP, CgKK;
  T* col;   // CgKK x NP: the columns of every image, or their gradient (null: not needed)
  T* chan;  // Kg x NP: one group's output channels, or their gradient
  explicit Batched(const Conv2dGeometry& g, bool with_columns = true)
      : Cg(g.C / g.groups), Kg(g.K / g.groups), P(g.Ho * g.Wo), NP(g.N * P),
        CgKK(Cg * g.kh * g.kw),
        col(with_columns ? static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * NP)) : nullptr),
        chan(static_cast<T*>(thread_scratch(3, sizeof(T) * Kg * NP))) {}
};

template <typename T>
void conv2d_forward_batched(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g) {
  const Batched<T> s(g, false);
  const index_t Kg = s.Kg, P = s.P, NP = s.NP, CgKK = s.CgKK;
  T* out = s.chan;
  const PackedWeights<T> packed(w, g, false);
  for (index_t gi = 0; gi < g.groups; ++gi) {
    const ColumnSource<T> source{x + gi * s.Cg * g.H * g.W, g.C * g.H * g.W, &g};
    gemm_prepacked_parallel_cpu(Kg, NP, CgKK, packed.group(gi), BPacker<T>{pack_columns<T>, &source},
                                out, NP, false);
#pragma omp parallel for collapse(2) schedule(static)
    for (index_t n = 0; n < g.N; ++n)
      for (index_t k = 0; k < Kg; ++k) {
        const T* src = out + k * NP + n * P;
        T* dst = y + (n * g.K + gi * Kg + k) * P;
        const T bias = b ? b[gi * Kg + k] : T(0);
        for (index_t p = 0; p < P; ++p) dst[p] = src[p] + bias;
      }
  }
}

template <typename T>
void conv2d_backward_data_batched(T* dx, const T* dy, const T* w, const Conv2dGeometry& g) {
  const Batched<T> s(g);
  const index_t Cg = s.Cg, Kg = s.Kg, P = s.P, NP = s.NP, CgKK = s.CgKK;
  T *dcol = s.col, *dyt = s.chan;
  const PackedWeights<T> packed(w, g, true);  // A = w[g]^T
  for (index_t gi = 0; gi < g.groups; ++gi) {
    gather_channels(dyt, dy, g, gi * Kg, Kg);
    const StridedB<T> source{dyt, NP, (index_t)1};
    gemm_prepacked_parallel_cpu(CgKK, NP, Kg, packed.group(gi), BPacker<T>{pack_strided_b<T>, &source},
                                dcol, NP, false);
#pragma omp parallel for schedule(static)
    for (index_t n = 0; n < g.N; ++n) {
      T* dxg = dx + (n * g.C + gi * Cg) * g.H * g.W;
      std::fill(dxg, dxg + Cg * g.H * g.W, T(0));
      col2im(dcol + n * P, Cg, g, dxg, NP);
    }
  }
}

template <typename T>
void conv2d_backward_weight_batched(T* dw, const T* dy, const T* x, const Conv2dGeometry& g) {
  const Batched<T> s(g);
  const index_t Kg = s.Kg, NP = s.NP, CgKK = s.CgKK;
  T *col = s.col, *dyt = s.chan;
  for (index_t gi = 0; gi < g.groups; ++gi) {
    im2col_all(x, gi, g, col);
    gather_channels(dyt, dy, g, gi * Kg, Kg);
    // dw[g] (Kg x CgKK) = dyt (Kg x NP) * col^T: B(k = j, n = r) = col[r][j].
    gemm_parallel_cpu(Kg, CgKK, NP, dyt, NP, (index_t)1, col, (index_t)1, NP,
                      dw + gi * Kg * CgKK, CgKK, false);
  }
}

// ------------------------------------------------------------------------
// Direct stride-1 convolution: no column matrix, no packing of the image.
// A micro-tile of RH x RW output positions (rows of one image) by V vectors of
// output channels stays in registers. For every tap (c, a, b) the kernel loads
// V vectors of the packed weights wd[kt][c][a][b][V*L] and multiplies them by
// the RH*RW input values xp[c][oh + i + a*dh][ow + j + b*dw], broadcast
// straight from a zero-padded copy of the images: within a tile row those sit
// at constant offsets, so no column matrix is built. The tile goes back to NCHW
// through a small transpose (RH*RW*V*L stores against Cg*kh*kw times as many
// FMAs). Small maps with many channels, where one image's GEMM is thin, and
// deep layers, where im2col's packing costs as much as the FMAs, gain most.
// Backward data runs it on the flipped geometry.

// The register tiles the direct kernel is compiled for: rows x columns of output positions
// by vectors of output channels, at most kDirectAccumulators accumulators.
struct DirectTile {
  int rh, rw, v;
};
#if defined(__SANITIZE_ADDRESS__)
// Sanitizer builds (tools/sanitize.sh) compile one tile per family: an instrumented, unrolled
// tile takes the compiler minutes. The cost model then picks among these.
constexpr int kDirectAccumulators = 12;
constexpr DirectTile kDirectTiles[] = {{1, 4, 2}, {2, 3, 2}, {3, 4, 1}};
#elif defined(__AVX512F__)
constexpr int kDirectAccumulators = 28;  // of 32 vector registers
constexpr DirectTile kDirectTiles[] = {
    {1, 14, 2}, {2, 7, 2}, {1, 12, 2}, {2, 6, 2}, {3, 4, 2}, {1, 8, 2}, {1, 7, 2}, {2, 4, 2}, {1, 4, 2},
    {7, 2, 2},  {6, 2, 2}, {4, 2, 2},
    {1, 28, 1}, {2, 14, 1}, {4, 7, 1}, {1, 24, 1}, {2, 12, 1}, {3, 8, 1}, {4, 6, 1}, {1, 16, 1},
    {2, 8, 1},  {4, 4, 1},  {2, 4, 1}};
#else
constexpr int kDirectAccumulators = 12;  // of 16 vector registers
constexpr DirectTile kDirectTiles[] = {{1, 6, 2}, {2, 3, 2}, {1, 4, 2},  {2, 2, 2}, {1, 12, 1},
                                       {2, 6, 1}, {3, 4, 1}, {4, 3, 1},  {1, 8, 1}, {1, 7, 1},
                                       {2, 4, 1}, {4, 2, 1}};
#endif
constexpr int kDirectTileCount = sizeof(kDirectTiles) / sizeof(kDirectTiles[0]);

template <typename T>
constexpr int direct_lanes() { return kSimdBytes / (int)sizeof(T); }

// Estimated cycles of one step of a register tile with r broadcast values and v vector loads
// (r x v FMAs): the FMAs (two per cycle) or the loads (two per cycle), whichever is longer, at
// least the eight chains two FMA pipes of latency four need, plus the loop's own step.
inline double direct_step_cycles(double r, double v) {
  return std::max({r * v / 2, (r + v) / 2, 4.0}) + 0.5;
}

// Estimated cycles of a forward tile choice: a step per tap, times the tiles, including the
// positions past the map's edge a tile computes and drops.
template <typename T>
double direct_cost(const Conv2dGeometry& g, const DirectTile& t) {
  const index_t VL = t.v * direct_lanes<T>(), Kg = g.K / g.groups;
  const double tiles = double((Kg + VL - 1) / VL) * double((g.N * g.Ho + t.rh - 1) / t.rh) *
                       double((g.Wo + t.rw - 1) / t.rw);
  return tiles * direct_step_cycles(t.rh * t.rw, t.v);
}

template <typename T>
int best_direct_tile(const Conv2dGeometry& g) {
  int best = 0;
  for (int i = 1; i < kDirectTileCount; ++i)
    if (direct_cost<T>(g, kDirectTiles[i]) < direct_cost<T>(g, kDirectTiles[best])) best = i;
  return best;
}

// The kernel size of an undilated square kernel whose taps the direct kernels compile out,
// else 0: 2x2, 3x3 and 5x5 (LeNet's) at stride 1; 3x3 (ResNet's downsampling) and 4x4 (DCGAN
// discriminators') at stride 2.
inline int undilated_square(const Conv2dGeometry& g) {
  if (g.dh != 1 || g.dw != 1 || g.kh != g.kw || g.sh != g.sw) return 0;
  const index_t k = g.kh;
  if (g.sh == 1) return k == 2 || k == 3 || k == 5 ? (int)k : 0;
  return g.sh == 2 && (k == 3 || k == 4) ? (int)k : 0;
}

// Kernel rows per weight-gradient tile: all of them up to 3x3; two rows of a 4x4 kernel and
// one of a 5x5 (all their taps would leave no room for a second channel vector).
constexpr int direct_weight_rows(int ks) { return ks <= 3 ? ks : ks == 4 ? 2 : 1; }

// Channels per block of the direct forward's padded copy: one cache line of them. The planes
// are stored channel-blocked, xp[block][r][t][c % CB], so that the channels a tile runs
// through one after another sit in the same line (planes apart, a broadcast's stride from one
// channel to the next would defeat the hardware prefetchers).
template <typename T>
constexpr index_t direct_block() { return 64 / (index_t)sizeof(T); }

// xp[(c / CB)*Hp*Wp*CB + (r*Wp + t)*CB + c % CB] = x[c][r - pt][t - pl] (0 outside x), Cg channels.
template <typename T>
void pad_blocked(T* xp, const T* x, index_t Cg, const Conv2dGeometry& g, const WideShape& s) {
  constexpr index_t CB = direct_block<T>();
  const index_t lo = std::min(std::max<index_t>(g.pl, 0), s.Wp);  // first copied column
  const index_t hi = std::max(lo, std::min(s.Wp, g.W + g.pl));    // end of copied columns
  for (index_t c0 = 0; c0 < Cg; c0 += CB) {
    const index_t cn = std::min(CB, Cg - c0);
    T* block = xp + c0 * s.Hp * s.Wp;
    for (index_t r = 0; r < s.Hp; ++r) {
      T* row = block + r * s.Wp * CB;
      const index_t h = r - g.pt;
      if (h < 0 || h >= g.H) {
        std::fill(row, row + s.Wp * CB, T(0));
        continue;
      }
      std::fill(row, row + lo * CB, T(0));
      std::fill(row + hi * CB, row + s.Wp * CB, T(0));
      // lanes past the last channel are never read
      transpose_into(row + lo * CB, CB, x + (c0 * g.H + h) * g.W + (lo - g.pl), g.H * g.W, cn, hi - lo);
    }
  }
}

// The padded planes the direct kernel reads: every output row and every tile's columns, with
// the taps' reach below and right of them (zeros past the padding).
inline WideShape direct_shape(const Conv2dGeometry& g, const DirectTile& t) {
  WideShape s(g);
  s.Hp = (g.Ho - 1) * g.sh + g.dh * (g.kh - 1) + 1;  // tile rows run on into the next image
  s.Wp = ((g.Wo + t.rw - 1) / t.rw * t.rw - 1) * g.sw + g.dw * (g.kw - 1) + 1;
  return s;
}

// tile[i*RW + j][l] = sum over c, a, b of x_i(c, a*dh, j*S + b*dw) * wk[tap][l], x_i from the
// channel-blocked padded planes at tile row i's origin (rows[i]: any image, any row):
// x_i(c, r, t) = rows[i][(c / CB)*plane*CB + (r*Wp + t)*CB + c % CB].
// KS > 0 compiles the taps of an undilated KS x KS kernel out (KS 0: kh, kw, dh, dw from g);
// S is the stride (2 only with KS 3 or 4: ResNet's downsampling 3x3 layers, DCGAN's 4x4 ones).
template <typename T, int RH, int RW, int V, int KS, int S = 1>
void direct_tile(const T* const* rows, index_t plane, index_t Wp, const T* __restrict wk,
                 const Conv2dGeometry& g, T* __restrict tile) {
  constexpr index_t CB = direct_block<T>();
  const T* xrow[RH];
#pragma GCC unroll 16
  for (int i = 0; i < RH; ++i) xrow[i] = rows[i];
  typedef T Vt __attribute__((vector_size(kSimdBytes)));
  constexpr int L = direct_lanes<T>();
  Vt acc[RH * RW][V];
#pragma GCC unroll 32
  for (int r = 0; r < RH * RW; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[r][v] = Vt{};
  // One tap: the weight vectors at wt times the tile's inputs at offset off of each row.
  auto tap = [&](index_t off, const T* __restrict wt) __attribute__((always_inline)) {
    Vt w[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) std::memcpy(&w[v], wt + v * L, sizeof(Vt));
#pragma GCC unroll 8
    for (int i = 0; i < RH; ++i)
#pragma GCC unroll 32
      for (int j = 0; j < RW; ++j) {
        const T s = xrow[i][off + j * S * CB];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) acc[i * RW + j][v] += s * w[v];
      }
    // Keeps the next tap's loads after this tap's FMAs: hoisted, they would take the registers
    // of the accumulators and spill them (GCC does that on unrolled taps).
    asm volatile("" ::: "memory");
  };
  const index_t Cg = g.C / g.groups;
  for (index_t c0 = 0, boff = 0; c0 < Cg; c0 += CB, boff += plane * CB) {
    const index_t cn = std::min(CB, Cg - c0);
    if constexpr (KS > 0) {
      for (index_t cc = 0; cc < cn; ++cc, wk += KS * KS * V * L) {
#pragma GCC unroll 8
        for (int a = 0; a < KS; ++a)
#pragma GCC unroll 8
          for (int b = 0; b < KS; ++b) tap(boff + cc + (a * Wp + b) * CB, wk + (a * KS + b) * V * L);
      }
    } else {
      const index_t row_step = g.dh * Wp * CB, col_step = g.dw * CB;
      for (index_t cc = 0; cc < cn; ++cc)
        for (index_t a = 0; a < g.kh; ++a)
          for (index_t b = 0; b < g.kw; ++b, wk += V * L) tap(boff + cc + a * row_step + b * col_step, wk);
    }
  }
#pragma GCC unroll 32
  for (int r = 0; r < RH * RW; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) std::memcpy(tile + r * V * L + v * L, &acc[r][v], sizeof(Vt));
}

// Scratch values the direct pass takes for g: the padded images and the packed weights.
template <typename T>
index_t direct_values(const Conv2dGeometry& g) {
  const DirectTile& t = kDirectTiles[best_direct_tile<T>(g)];
  const WideShape s = direct_shape(g, t);
  const index_t VL = t.v * direct_lanes<T>(), Kg = g.K / g.groups;
  constexpr index_t CB = direct_block<T>();
  const index_t images[] = {g.N, g.groups, (g.C / g.groups + CB - 1) / CB * CB, s.Hp, s.Wp};
  // all the packed channel tiles, or one per thread (direct_forward)
  const index_t weights[] = {g.groups, (Kg + VL - 1) / VL * VL, g.C / g.groups, g.kh, g.kw};
  const index_t per_thread[] = {(index_t)omp_get_max_threads(), VL, g.C / g.groups, g.kh, g.kw};
  const index_t a = checked_product(images, 5), b = checked_product(weights, 5),
                c = checked_product(per_thread, 5);
  index_t total;
  if (a == kSizeOverflow || b == kSizeOverflow || c == kSizeOverflow || !checked_add(a, std::max(b, c), &total))
    return kSizeOverflow;
  return total;
}

// Channel tile k0 / VL of group gi packed for direct_tile: dst[d*VL + l] = the weight of
// output channel k0 + l at depth d = c*taps + tap (0 past the group's Kg channels). flipped: g
// is flipped_geometry(g0) and w holds g0's weights (backward data), read flipped and
// transposed: wf[gi][o][i][t] = w[gi][i][o][taps - 1 - t]. Both read w in runs of contiguous
// values.
template <typename T>
void pack_direct_weights(T* dst, const T* w, const Conv2dGeometry& g, index_t gi, index_t k0, index_t VL,
                         bool flipped) {
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups, taps = g.kh * g.kw, depth = Cg * taps;
  const index_t kcount = std::min(VL, Kg - k0);
  if (!flipped) {
    // Blocked (transpose.h): a pass per output channel over the whole of dst, hundreds of KB on a
    // deep layer, took as long as the convolution's FMAs on a 4x4 map.
    transpose_into(dst, VL, w + (gi * Kg + k0) * depth, depth, kcount, depth);
  } else {
    // per input channel: kcount x taps, transposed onto dst's rows last to first
    for (index_t i = 0; i < Cg; ++i)
      transpose_into(dst + (i * taps + taps - 1) * VL, -VL, w + ((gi * Cg + i) * Kg + k0) * taps, taps, kcount, taps);
  }
  for (index_t d = 0; d < depth; ++d)
    for (index_t l = kcount; l < VL; ++l) dst[d * VL + l] = T(0);
}

template <typename T, int RH, int RW, int V>
void direct_forward(T* y, const T* x, const T* w, const T* bias, const Conv2dGeometry& g, bool flipped) {
  constexpr index_t VL = V * direct_lanes<T>();
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups, taps = g.kh * g.kw, depth = Cg * taps;
  const index_t KT = (Kg + VL - 1) / VL, TW = (g.Wo + RW - 1) / RW;
  const WideShape s = direct_shape(g, DirectTile{RH, RW, V});
  constexpr index_t CB = direct_block<T>();
  const index_t plane = s.Hp * s.Wp, group_values = (Cg + CB - 1) / CB * CB * plane;
  const index_t image_values = g.groups * group_values;
  // Tile rows run over the output rows of all images (image-major), so that small maps fill a
  // tile (a 2x2 map: rows of several images). Items (group, channel tile, tile row),
  // consecutive ones on one thread: the channel tile outermost when all the weights outweigh
  // all the padded images (deep layers: each tile's weights stay in L2 for every image), else
  // blocks of about one image's tile rows outermost.
  const index_t rows_all = g.N * g.Ho, TH = (rows_all + RH - 1) / RH;
  const bool weights_outer = g.K * depth > g.N * image_values;
  const index_t BT = weights_outer ? TH : std::max<index_t>(1, g.Ho / RH);  // tile rows per block
  const index_t blocks = (TH + BT - 1) / BT, items = blocks * g.groups * KT * BT;
  // The packed weights: with the channel tile outermost, each thread packs the tiles it runs
  // into its own L2-sized buffer as it reaches them (a deep layer's 9 MB of weights are then
  // read once, never written back to memory and read again); else all tiles once, shared.
  const int threads = omp_get_max_threads();
  const index_t tile_values = depth * VL;
  CachedBuffer<T> xp((size_t)(g.N * image_values)),
      wd((size_t)(weights_outer ? threads * tile_values : g.groups * KT * tile_values));
  T* wdp = wd.get();
  if (!weights_outer) {
#pragma omp parallel for schedule(static)
    for (index_t gk = 0; gk < g.groups * KT; ++gk)
      pack_direct_weights(wdp + gk * tile_values, w, g, gk / KT, (gk % KT) * VL, VL, flipped);
  }
  T* xpp = xp.get();
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t n = 0; n < g.N; ++n)
    for (index_t gi = 0; gi < g.groups; ++gi)
      pad_blocked(xpp + n * image_values + gi * group_values, x + (n * g.C + gi * Cg) * g.H * g.W, Cg, g, s);
  const int square = undilated_square(g);
#pragma omp parallel num_threads(threads)
  {
  T* mine = wdp + (weights_outer ? omp_get_thread_num() * tile_values : 0);
  index_t mine_gk = -1;  // the tile packed in mine
#pragma omp for schedule(static)
  for (index_t item = 0; item < items; ++item) {
    const index_t th = item / (BT * g.groups * KT) * BT + item % BT;
    if (th >= TH) continue;
    const index_t kt = (item / BT) % KT, gi = (item / (BT * KT)) % g.groups;
    if (weights_outer && mine_gk != gi * KT + kt) {
      pack_direct_weights(mine, w, g, gi, kt * VL, VL, flipped);
      mine_gk = gi * KT + kt;
    }
    const T* wk = weights_outer ? mine : wdp + (gi * KT + kt) * tile_values;
    const T* rows[RH];
    index_t out_row[RH];  // y's offset of each tile row's first position, -1 past the last row
    for (int i = 0; i < RH; ++i) {
      const index_t fr = th * RH + i, n = fr / g.Ho, oh = fr % g.Ho;
      const bool valid = fr < rows_all;
      rows[i] = xpp + (valid ? n * image_values + oh * g.sh * s.Wp * CB : 0) + gi * group_values;
      out_row[i] = valid ? (n * g.K * g.Ho + oh) * g.Wo : -1;
    }
    const index_t kcount = std::min(VL, Kg - kt * VL);
    alignas(64) T tile[RH * RW * VL];
    for (index_t tw = 0; tw < TW; ++tw) {
      const index_t col = tw * RW * g.sw * CB;
      const T* shifted[RH];
      for (int i = 0; i < RH; ++i) shifted[i] = rows[i] + col;
      if (square == 3 && g.sh == 2)
        direct_tile<T, RH, RW, V, 3, 2>(shifted, plane, s.Wp, wk, g, tile);
      else if (square == 4)
        direct_tile<T, RH, RW, V, 4, 2>(shifted, plane, s.Wp, wk, g, tile);
      else if (square == 3)
        direct_tile<T, RH, RW, V, 3>(shifted, plane, s.Wp, wk, g, tile);
      else if (square == 2)
        direct_tile<T, RH, RW, V, 2>(shifted, plane, s.Wp, wk, g, tile);
      else if (square == 5)
        direct_tile<T, RH, RW, V, 5>(shifted, plane, s.Wp, wk, g, tile);
      else
        direct_tile<T, RH, RW, V, 0>(shifted, plane, s.Wp, wk, g, tile);
      const index_t cols = std::min<index_t>(RW, g.Wo - tw * RW);
      for (index_t l = 0; l < kcount; ++l) {
        const index_t k = gi * Kg + kt * VL + l;
        const T b = bias ? bias[k] : T(0);
        for (int i = 0; i < RH; ++i) {
          if (out_row[i] < 0) break;
          T* yk = y + out_row[i] + k * g.Ho * g.Wo + tw * RW;
          for (index_t j = 0; j < cols; ++j) yk[j] = tile[(i * RW + j) * VL + l] + b;
        }
      }
    }
  }
  }
}

template <typename T, int I = 0>
void direct_forward_tile(int index, T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g,
                         bool flipped) {
  if constexpr (I < kDirectTileCount) {
    if (index == I)
      return direct_forward<T, kDirectTiles[I].rh, kDirectTiles[I].rw, kDirectTiles[I].v>(y, x, w, b, g, flipped);
    direct_forward_tile<T, I + 1>(index, y, x, w, b, g, flipped);
  }
}

// y = conv(x, w) + b by the direct kernel, with the tile that costs least for g (flipped: as
// direct_forward).
template <typename T>
void conv2d_forward_direct(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g,
                           bool flipped = false) {
  direct_forward_tile<T>(best_direct_tile<T>(g), y, x, w, b, g, flipped);
}

// The strides the direct kernels take: 1, or 2 with an undilated 3x3 or 4x4 kernel.
inline bool direct_stride(const Conv2dGeometry& g) {
  return (g.sh == 1 && g.sw == 1) || (g.sh == 2 && undilated_square(g) > 0);
}

// Whether the direct kernel runs g: forced for every stride-1 convolution (and 3x3 or 4x4
// stride 2) by CONV2D_DIRECT; under CONV2D_AUTO for those with at least 8 input channels per group (a
// tap loop long enough), at least half a vector of output channels, rows of at least 2
// positions, and a tile that wastes at most a quarter of its work on positions and channels
// past the edges. (Deep layers on 2x2 and 3x3 maps: the tile rows run across images, and the
// direct kernel beat the batched GEMM by 0-40% at 1 thread and 15-60% at 2 on an AVX-512
// Zen 5; on an AVX-512 Xeon the GEMM had led by 84 GFLOP/s to 66 on a 2x2 map with 4 as the
// limit, which the per-thread weight packing has since narrowed.)
template <typename T>
bool use_direct(const Conv2dGeometry& g) {
  const int strategy = conv_strategy.load(std::memory_order_relaxed);
  if (!direct_stride(g)) return false;
  if (strategy == CONV2D_DIRECT) return true;
  const index_t Kg = g.K / g.groups;
  if (strategy != CONV2D_AUTO || is_pointwise(g) || g.C / g.groups < 8 || 2 * Kg < direct_lanes<T>() ||
      g.Wo < 2)
    return false;
  const DirectTile& t = kDirectTiles[best_direct_tile<T>(g)];
  const index_t VL = t.v * direct_lanes<T>();
  const double computed = double((Kg + VL - 1) / VL * VL) * double((g.N * g.Ho + t.rh - 1) / t.rh * t.rh) *
                          double((g.Wo + t.rw - 1) / t.rw * t.rw);
  return 4.0 * double(Kg) * double(g.N * g.Ho) * double(g.Wo) >= 3.0 * computed;
}

// The direct weight gradient of a stride-1 convolution with an undilated 2x2, 3x3 or 5x5
// kernel (or 3x3 or 4x4 at stride 2):
//   dw[k][c][a][b] = sum over n, oh, ow of dy[n][k][oh*S + a][ow*S + b] * xp[n][c][oh + a][ow + b].
// A register tile holds the taps of one input channel c (all of them, two kernel rows of a 4x4
// or one of a 5x5) for V vectors of output
// channels; for every output position it loads V vectors of dy transposed to channels-last
// (per tile, dyt[tile][n][p][lane]) and broadcasts the inputs around it from the padded planes (constant
// offsets from one row pointer). The sum over positions stays in registers: tiles are
// independent (no per-thread partial gradients, deterministic for any thread count), and no
// column matrix is built. Positions run in chunks of images whose dyt block stays in L2.
template <typename T>
bool use_direct_weight(const Conv2dGeometry& g) {
  const int strategy = conv_strategy.load(std::memory_order_relaxed);
  if (strategy != CONV2D_AUTO && strategy != CONV2D_DIRECT) return false;
  if (!direct_stride(g) || undilated_square(g) == 0) return false;
  if (strategy == CONV2D_DIRECT) return true;
  // Under AUTO: rows of at least 4 positions (the loop over a row's positions is the inner one),
  // and at least 8 input channels per group, or else few outputs (one vector of them) or a
  // stride of 2, where the GEMM's sum over positions runs as a thin product (the first layers
  // of U-Net, LeNet and DCGAN's discriminator, 3-16 outputs from 1-3 channels or stride 2,
  // took 2-2.4x the direct kernel's time at 1 thread).
  return g.Wo >= 4 && (g.C / g.groups >= 8 || g.K / g.groups <= direct_lanes<T>() || g.sh == 2);
}

// Channel vectors per weight-gradient tile: one accumulator per tap each, at most
// kDirectAccumulators in all; the count that costs least (direct_step_cycles per position).
template <typename T>
int direct_weight_vectors(const Conv2dGeometry& g) {
  const index_t Kg = g.K / g.groups;
  const double taps = double(direct_weight_rows((int)g.kh) * g.kw);
  int best = 1;
  double best_cost = 0;
  for (int v = 1; taps * v <= kDirectAccumulators; ++v) {
    const index_t VL = v * direct_lanes<T>();
    const double cost = double((Kg + VL - 1) / VL) * direct_step_cycles(taps, v);
    if (v == 1 || cost < best_cost) best = v, best_cost = cost;
  }
  return best;
}

// Output rows (of all images, image-major) per chunk: their dyt block (positions x the tile's
// channels) within about 512 KiB, so that it stays in L2 while every input channel's tiles
// run over it.
template <typename T>
index_t direct_weight_chunk(const Conv2dGeometry& g, index_t VL) {
  const index_t per_row = g.Wo * VL * (index_t)sizeof(T);
  return std::max<index_t>(1, std::min<index_t>(g.N * g.Ho, (index_t(512) << 10) / std::max<index_t>(per_row, 1)));
}

// Scratch values: padded images, dyt and the tiles' running sums.
template <typename T>
index_t direct_weight_values(const Conv2dGeometry& g) {
  const index_t VL = direct_weight_vectors<T>(g) * direct_lanes<T>(), Kg = g.K / g.groups;
  const index_t KP = g.groups * ((Kg + VL - 1) / VL * VL);
  const WideShape s = direct_shape(g, DirectTile{1, 1, 1});
  const index_t images[] = {g.N, g.C, s.Hp, s.Wp}, dyt[] = {g.N, g.Ho, g.Wo, KP},
                sums[] = {KP, g.C / g.groups, g.kh * g.kw};
  const index_t a = checked_product(images, 4), b = checked_product(dyt, 4), c = checked_product(sums, 3);
  index_t total;
  if (a == kSizeOverflow || b == kSizeOverflow || c == kSizeOverflow || !checked_add(a, b, &total) ||
      !checked_add(total, c, &total))
    return kSizeOverflow;
  return total;
}

template <typename T, int V, int KS, int S>
void direct_weight(T* dw, const T* dy, const T* x, const Conv2dGeometry& g) {
  constexpr int taps = KS * KS, AR = direct_weight_rows(KS), NA = KS / AR, tt = AR * KS;
  typedef T Vt __attribute__((vector_size(kSimdBytes)));
  constexpr int L = direct_lanes<T>();
  constexpr index_t VL = V * L;
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups, P = g.Ho * g.Wo;
  const index_t KT = (Kg + VL - 1) / VL, KP = g.groups * KT * VL;
  const WideShape s = direct_shape(g, DirectTile{1, 1, 1});  // every position's taps
  const index_t plane = s.Hp * s.Wp, Wp = s.Wp;
  CachedBuffer<T> xp((size_t)(g.N * g.C * plane)), dyt((size_t)(g.N * P * KP)),
      sums((size_t)(KP * Cg * taps));
  T *xpp = xp.get(), *dytp = dyt.get(), *sump = sums.get();
#pragma omp parallel for schedule(static)
  for (index_t n = 0; n < g.N; ++n) {
    pad_planes(xpp + n * g.C * plane, x + n * g.C * g.H * g.W, g.C, g, s);
    // dyt[gi*KT + kt][n][p][l] = dy[n][gi*Kg + kt*VL + l][p], zeros past Kg: each tile's
    // stream of positions contiguous
    for (index_t gk = 0; gk < g.groups * KT; ++gk) {
      const index_t gi = gk / KT, k0 = (gk % KT) * VL;
      T* dst = dytp + (gk * g.N + n) * P * VL;
      const index_t kcount = std::min(VL, Kg - k0);
      transpose_into(dst, VL, dy + (n * g.K + gi * Kg + k0) * P, P, kcount, P);
      if (kcount < VL)
        for (index_t p = 0; p < P; ++p) std::fill(dst + p * VL + kcount, dst + (p + 1) * VL, T(0));
    }
  }
  const index_t chunk = direct_weight_chunk<T>(g, VL), items = g.groups * KT * Cg * NA, rows = g.N * g.Ho;
  for (index_t r0 = 0; r0 < rows; r0 += chunk) {
    const index_t r1 = std::min(rows, r0 + chunk);
#pragma omp parallel for schedule(static)
    for (index_t item = 0; item < items; ++item) {
      // item = ((gi*KT + kt)*Cg + c)*NA + kernel row group
      const index_t a0 = item % NA * AR, c = item / NA % Cg, gk = item / (NA * Cg), gi = gk / KT;
      T* sum = sump + item * tt * VL;
      Vt acc[tt][V];
      for (int t = 0; t < tt; ++t)
        for (int v = 0; v < V; ++v) {
          if (r0 == 0)
            acc[t][v] = Vt{};
          else
            std::memcpy(&acc[t][v], sum + (t * V + v) * L, sizeof(Vt));
        }
      // rows run on through the images: dyt's positions are contiguous across them, the padded
      // planes' rows within one (no division per row: a row of a 4x4 map is 36 FMA cycles)
      index_t n = r0 / g.Ho, oh = r0 % g.Ho;
      const T* dr = dytp + (gk * g.N * P + r0 * g.Wo) * VL;
      for (index_t row = r0; row < r1; ++row) {
          const T* xr = xpp + ((n * g.C + gi * Cg + c) * s.Hp + oh * S + a0) * Wp;
          if (++oh == g.Ho) oh = 0, ++n;
          for (index_t ow = 0; ow < g.Wo; ++ow, xr += S, dr += VL) {
            Vt d[V];
#pragma GCC unroll 4
            for (int v = 0; v < V; ++v) std::memcpy(&d[v], dr + v * L, sizeof(Vt));
#pragma GCC unroll 8
            for (int a = 0; a < AR; ++a)
#pragma GCC unroll 8
              for (int b = 0; b < KS; ++b) {
                const T xv = xr[a * Wp + b];
#pragma GCC unroll 8
                for (int v = 0; v < V; ++v) acc[a * KS + b][v] += xv * d[v];
              }
          }
        }
      for (int t = 0; t < tt; ++t)
        for (int v = 0; v < V; ++v) std::memcpy(sum + (t * V + v) * L, &acc[t][v], sizeof(Vt));
    }
  }
  // dw[gi*Kg + k][c][t] from the sums (item (gi, kt, c, t / tt), tap t % tt, lane k - kt*VL):
  // a channel tile's sums are (c, t) rows by lanes, transposed in blocks of rows
  constexpr index_t RB = 256;
  const index_t depth = Cg * taps, RC = (depth + RB - 1) / RB;
#pragma omp parallel for schedule(static)
  for (index_t item = 0; item < g.groups * KT * RC; ++item) {
    const index_t gk = item / RC, d0 = item % RC * RB, gi = gk / KT, k0 = gk % KT * VL;
    transpose_into(dw + (gi * Kg + k0) * depth + d0, depth, sump + gk * depth * VL + d0 * VL, VL,
                   std::min(RB, depth - d0), std::min(VL, Kg - k0));
  }
}

template <typename T, int KS, int S, int V = 1>
void direct_weight_vectors_dispatch(T* dw, const T* dy, const T* x, const Conv2dGeometry& g, int vectors) {
  if constexpr (direct_weight_rows(KS) * KS * V <= kDirectAccumulators) {
    if (vectors == V) return direct_weight<T, V, KS, S>(dw, dy, x, g);
    direct_weight_vectors_dispatch<T, KS, S, V + 1>(dw, dy, x, g, vectors);
  }
}

template <typename T>
void conv2d_backward_weight_direct(T* dw, const T* dy, const T* x, const Conv2dGeometry& g) {
  const int vectors = direct_weight_vectors<T>(g), square = undilated_square(g);
  if (square == 3 && g.sh == 2) return direct_weight_vectors_dispatch<T, 3, 2>(dw, dy, x, g, vectors);
  if (square == 4) return direct_weight_vectors_dispatch<T, 4, 2>(dw, dy, x, g, vectors);
  if (square == 3) return direct_weight_vectors_dispatch<T, 3, 1>(dw, dy, x, g, vectors);
  if (square == 5) return direct_weight_vectors_dispatch<T, 5, 1>(dw, dy, x, g, vectors);
  direct_weight_vectors_dispatch<T, 2, 1>(dw, dy, x, g, vectors);
}

// A kernel that covers the whole unpadded input once (a 1x1 output, as in a
// DCGAN discriminator's last layer or a convolutional classifier head) is a
// fully connected layer: y (N x K) = x (N x CHW) * w^T, no im2col. Used under
// CONV2D_AUTO (the forced strategies keep their own paths for the tests).
bool is_dense(const Conv2dGeometry& g) {
  return conv_strategy.load(std::memory_order_relaxed) == CONV2D_AUTO && g.groups == 1 &&
         g.Ho == 1 && g.Wo == 1 && g.kh == g.H && g.kw == g.W && g.pt == 0 && g.pl == 0 &&
         g.dh == 1 && g.dw == 1;
}

// A strided convolution whose kernel is a multiple of the stride s (DCGAN's
// 4x4, stride 2) is a stride-1, unpadded convolution with an s times smaller
// kernel of the input rearranged space-to-depth:
//   z[n][(c*s + r)*s + q][i][j] = x[n][c][s*i + r - pt][s*j + q - pl]  (0 outside x)
//   wz[k][(c*s + r)*s + q][a][b] = w[k][c][s*a + r][s*b + q]
// so that tap (s*a + r, s*b + q) of output (oh, ow) reads z[..][oh + a][ow + b].
// The stride-1 convolution then takes the fast paths above (and its backward
// data the flipped, col2im-free one); the gradients are rearranged back.
bool use_space_to_depth(const Conv2dGeometry& g) {
  return conv_strategy.load(std::memory_order_relaxed) == CONV2D_AUTO && g.sh == g.sw &&
         g.sh >= 2 && g.dh == 1 && g.dw == 1 && g.kh % g.sh == 0 && g.kw % g.sw == 0 &&
         !is_dense(g);
}

Conv2dGeometry space_to_depth_geometry(const Conv2dGeometry& g) {
  const index_t s = g.sh, kh = g.kh / s, kw = g.kw / s;
  return Conv2dGeometry{g.N, g.C * s * s, g.Ho + kh - 1, g.Wo + kw - 1, g.K, g.Ho, g.Wo,
                        kh, kw, 1, 1, 0, 0, 1, 1, g.groups};
}

// Calls f(z_offset, x_offset) for every value of z, x_offset -1 where z is padding; the
// calls for one (image, channel) plane of x come from one thread.
template <typename F>
void for_each_depth_value(const Conv2dGeometry& g, const Conv2dGeometry& gz, F f) {
  const index_t s = g.sh;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t n = 0; n < g.N; ++n)
    for (index_t c = 0; c < g.C; ++c)
      for (index_t r = 0; r < s; ++r)
        for (index_t q = 0; q < s; ++q)
          for (index_t i = 0; i < gz.H; ++i) {
            const index_t h = s * i + r - g.pt;
            const index_t zrow = ((n * gz.C + (c * s + r) * s + q) * gz.H + i) * gz.W;
            const index_t xrow = ((n * g.C + c) * g.H + h) * g.W + q - g.pl;
            // columns j whose w = s*j + q - pl lies in [0, W): [lo, hi); none on a padding row
            const index_t w0 = q - g.pl;
            index_t lo = w0 >= 0 ? 0 : (-w0 + s - 1) / s;
            index_t hi = (g.W - w0 + s - 1) / s;
            if (h < 0 || h >= g.H) lo = hi = 0;
            lo = std::min(lo, gz.W);
            hi = std::max(lo, std::min(hi, gz.W));
            for (index_t j = 0; j < lo; ++j) f(zrow + j, index_t(-1));
            for (index_t j = lo; j < hi; ++j) f(zrow + j, xrow + s * j);
            for (index_t j = hi; j < gz.W; ++j) f(zrow + j, index_t(-1));
          }
}

// z = space_to_depth(x).
template <typename T>
void space_to_depth(T* z, const T* x, const Conv2dGeometry& g, const Conv2dGeometry& gz) {
  for_each_depth_value(g, gz, [=](index_t zo, index_t xo) { z[zo] = xo >= 0 ? x[xo] : T(0); });
}

// dx from dz, the adjoint: every cell of x is read by at most one value of z, and a cell no
// output reads gets 0.
template <typename T>
void depth_to_space(T* dx, const T* dz, const Conv2dGeometry& g, const Conv2dGeometry& gz) {
  std::fill(dx, dx + g.N * g.C * g.H * g.W, T(0));
  for_each_depth_value(g, gz, [=](index_t zo, index_t xo) {
    if (xo >= 0) dx[xo] = dz[zo];
  });
}

// Calls f(wz_offset, w_offset) for every weight.
template <typename F>
void for_each_depth_weight(const Conv2dGeometry& g, F f) {
  const index_t s = g.sh, kh = g.kh / s, kw = g.kw / s, Cg = g.C / g.groups;
  for (index_t k = 0; k < g.K; ++k)
    for (index_t c = 0; c < Cg; ++c)
      for (index_t r = 0; r < s; ++r)
        for (index_t q = 0; q < s; ++q)
          for (index_t a = 0; a < kh; ++a)
            for (index_t b = 0; b < kw; ++b)
              f((((k * Cg + c) * s + r) * s + q) * kh * kw + a * kw + b,
                ((k * Cg + c) * g.kh + s * a + r) * g.kw + s * b + q);
}

}  // namespace

void set_conv2d_strategy_cpu(int strategy) { conv_strategy.store(strategy); }

namespace {

// The direct kernels' buffers (forward; backward data's with the flipped weights; the weight
// gradient's), the largest of them; 0 where none runs direct.
index_t direct_workspace_values(const Conv2dGeometry& g, size_t elem) {
  auto values = [elem](const Conv2dGeometry& h) {
    return elem == sizeof(double) ? direct_values<double>(h) : direct_values<float>(h);
  };
  const Conv2dGeometry f = flipped_geometry(g);
  const bool dbl = elem == sizeof(double);
  index_t fwd = (dbl ? use_direct<double>(g) : use_direct<float>(g)) ? values(g) : 0, bwd = 0;
  if (g.sh == 1 && g.sw == 1 && (dbl ? use_direct<double>(f) : use_direct<float>(f))) {
    bwd = values(f);  // the packing reads the weights flipped in place
    if (bwd == kSizeOverflow) return kSizeOverflow;
  }
  const index_t wgt = dbl ? (use_direct_weight<double>(g) ? direct_weight_values<double>(g) : 0)
                          : (use_direct_weight<float>(g) ? direct_weight_values<float>(g) : 0);
  if (fwd == kSizeOverflow || wgt == kSizeOverflow) return kSizeOverflow;
  return std::max({fwd, bwd, wgt});
}

// The GEMM routes' workspace (the per-image, batched, space-to-depth paths).
index_t gemm_workspace_values(const Conv2dGeometry& g, size_t elem);

}  // namespace

index_t conv2d_workspace_values_cpu(const Conv2dGeometry& g, size_t elem) {
  if (is_dense(g)) return 0;
  const index_t direct = direct_workspace_values(g, elem), gemm = gemm_workspace_values(g, elem);
  if (direct == kSizeOverflow || gemm == kSizeOverflow) return kSizeOverflow;
  return std::max(direct, gemm);
}

namespace {

index_t gemm_workspace_values(const Conv2dGeometry& g, size_t elem) {
  if (is_dense(g)) return 0;
  if (use_space_to_depth(g)) {  // z (or dz) and the rearranged weights, then gz's own
    const Conv2dGeometry gz = space_to_depth_geometry(g);
    const index_t z_sizes[] = {gz.N, gz.C, gz.H, gz.W}, w_sizes[] = {g.K, gz.C / g.groups, gz.kh, gz.kw};
    const index_t z = checked_product(z_sizes, 4), wz = checked_product(w_sizes, 4);
    const index_t inner = z == kSizeOverflow ? kSizeOverflow : conv2d_workspace_values_cpu(gz, elem);
    index_t total;
    if (z == kSizeOverflow || wz == kSizeOverflow || inner == kSizeOverflow ||
        !checked_add(z, wz, &total) || !checked_add(total, inner, &total))
      return kSizeOverflow;
    return total;
  }
  if (use_batched(g, elem)) return batched_values(g);
  const int threads = omp_get_max_threads();
  const index_t users = g.N >= threads && threads > 1 ? threads : 1;  // for_each_image's rule
  const index_t CgKK = g.C / g.groups * g.kh * g.kw;
  // the largest of im2col's columns and the wide path's buffers (forward, or backward data's
  // flipped convolution), per thread that runs images
  const index_t col_sizes[] = {is_pointwise(g) ? 0 : CgKK, g.Ho, g.Wo};
  index_t col_values = checked_product(col_sizes, 3);
  const Conv2dGeometry f = flipped_geometry(g);
  for (index_t wide : {use_wide(g) ? wide_values(g) : 0,
                       g.sh == 1 && g.sw == 1 && use_wide(f) ? wide_values(f) : 0}) {
    if (wide == kSizeOverflow || col_values == kSizeOverflow) return kSizeOverflow;
    col_values = std::max(col_values, wide);
  }
  const index_t col[] = {col_values, users, 1, 1};
  const index_t partial[] = {users > 1 ? users : 0, g.K, CgKK};  // backward weight's partial dw
  const index_t a = checked_product(col, 4), b = checked_product(partial, 3);
  index_t total;
  if (a == kSizeOverflow || b == kSizeOverflow || !checked_add(a, b, &total)) return kSizeOverflow;
  return total;
}
}  // namespace

int get_conv2d_strategy_cpu() { return conv_strategy.load(); }

namespace {

// y = conv(x, packed weights) + b, one image at a time (images over threads, or threaded GEMMs).
template <typename T>
void forward_images(T* y, const T* x, const PackedWeights<T>& packed, const T* b,
                    const Conv2dGeometry& g) {
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g), wide = use_wide(g);
  const WideShape ws(g);
  const std::vector<index_t> offsets = wide ? wide_offsets(g, ws) : std::vector<index_t>();
  for_each_image(g.N, [&](index_t n, bool parallel) {
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (n * g.C + gi * Cg) * g.H * g.W;
      T* yg = y + (n * g.K + gi * Kg) * P;
      if (pointwise) {
        const StridedB<T> source{xg, P, (index_t)1};
        gemm_prepacked_dispatch(parallel, Kg, P, CgKK, packed.group(gi),
                                BPacker<T>{pack_strided_b<T>, &source}, yg, P);
      } else if (wide) {
        T* xp = static_cast<T*>(thread_scratch(5, sizeof(T) * Cg * ws.Hp * ws.Wp));
        T* out = static_cast<T*>(thread_scratch(6, sizeof(T) * Kg * ws.Nw));
        pad_planes(xp, xg, Cg, g, ws);
        const WideSource<T> source{xp, offsets.data()};
        gemm_prepacked_dispatch(parallel, Kg, ws.Nw, CgKK, packed.group(gi),
                                BPacker<T>{pack_wide<T>, &source}, out, ws.Nw);
        for (index_t k = 0; k < Kg; ++k)
          for (index_t oh = 0; oh < g.Ho; ++oh)
            std::memcpy(yg + (k * g.Ho + oh) * g.Wo, out + k * ws.Nw + oh * ws.Wp, sizeof(T) * g.Wo);
      } else {
        const ColumnSource<T> source{xg, g.C * g.H * g.W, &g};
        gemm_prepacked_dispatch(parallel, Kg, P, CgKK, packed.group(gi),
                                BPacker<T>{pack_columns<T>, &source}, yg, P);
      }
      if (b)
        for (index_t k = 0; k < Kg; ++k) {
          const T bias = b[gi * Kg + k];
          T* row = yg + k * P;
          for (index_t p = 0; p < P; ++p) row[p] += bias;
        }
    }
  });
}

// wf[g][c][k][a][b] = w[g][k][c][kh-1-a][kw-1-b]: the flipped geometry's weights.
template <typename T>
void flip_weights(T* wf, const T* w, const Conv2dGeometry& g) {
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups, taps = g.kh * g.kw;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t gi = 0; gi < g.groups; ++gi)
    for (index_t k = 0; k < Kg; ++k)
      for (index_t c = 0; c < Cg; ++c) {
        const T* src = w + ((gi * Kg + k) * Cg + c) * taps;
        T* dst = wf + ((gi * Cg + c) * Kg + k) * taps;
        for (index_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
}

}  // namespace

template <typename T>
void conv2d_forward_cpu(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g) {
  if (is_dense(g)) {
    const index_t D = g.C * g.H * g.W;
    // B(k = d, j = k_out) = w[k_out][d]: the transposed weights, read in place.
    gemm_parallel_cpu(g.N, g.K, D, x, D, (index_t)1, w, (index_t)1, D, y, g.K, false);
    if (b)
      for (index_t n = 0; n < g.N; ++n)
        for (index_t k = 0; k < g.K; ++k) y[n * g.K + k] += b[k];
    return;
  }
  // the direct kernel first: it takes 4x4 stride-2 layers as they are
  if (use_direct<T>(g)) return conv2d_forward_direct(y, x, w, b, g);
  if (use_space_to_depth(g)) {
    const Conv2dGeometry gz = space_to_depth_geometry(g);
    CachedBuffer<T> z((size_t)(gz.N * gz.C * gz.H * gz.W)), wz((size_t)(g.K * gz.C / g.groups * gz.kh * gz.kw));
    space_to_depth(z.get(), x, g, gz);
    for_each_depth_weight(g, [&](index_t zo, index_t wo) { wz.get()[zo] = w[wo]; });
    return conv2d_forward_cpu(y, z.get(), static_cast<const T*>(wz.get()), b, gz);
  }
  if (use_batched(g, sizeof(T))) return conv2d_forward_batched(y, x, w, b, g);
  forward_images(y, x, PackedWeights<T>(w, g, false), b, g);
}

template <typename T>
void conv2d_backward_data_cpu(T* dx, const T* dy, const T* w, const Conv2dGeometry& g) {
  if (is_dense(g)) {  // dx (N x CHW) = dy (N x K) * w (K x CHW)
    const index_t D = g.C * g.H * g.W;
    return gemm_parallel_cpu(g.N, D, g.K, dy, g.K, (index_t)1, w, D, (index_t)1, dx, D, false);
  }
  if (use_space_to_depth(g)) {
    const Conv2dGeometry gz = space_to_depth_geometry(g);
    CachedBuffer<T> dz((size_t)(gz.N * gz.C * gz.H * gz.W)), wz((size_t)(g.K * gz.C / g.groups * gz.kh * gz.kw));
    for_each_depth_weight(g, [&](index_t zo, index_t wo) { wz.get()[zo] = w[wo]; });
    conv2d_backward_data_cpu(dz.get(), dy, static_cast<const T*>(wz.get()), gz);
    depth_to_space(dx, static_cast<const T*>(dz.get()), g, gz);
    return;
  }
  if (g.sh == 1 && g.sw == 1 && use_direct<T>(flipped_geometry(g))) {
    return conv2d_forward_direct(dx, dy, w, static_cast<const T*>(nullptr), flipped_geometry(g), true);
  }
  if (use_batched(g, sizeof(T))) return conv2d_backward_data_batched(dx, dy, w, g);
  if (g.sh == 1 && g.sw == 1 && !is_pointwise(g) && use_wide(flipped_geometry(g))) {
    const Conv2dGeometry f = flipped_geometry(g);
    const index_t Cg = g.C / g.groups, depth = g.K / g.groups * g.kh * g.kw;
    CachedBuffer<T> flipped((size_t)(g.C * depth));
    flip_weights(flipped.get(), w, g);
    return forward_images(dx, dy, PackedWeights<T>(flipped.get(), g.groups, Cg, depth),
                          static_cast<const T*>(nullptr), f);
  }
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  const PackedWeights<T> packed(w, g, true);  // A = w[g]^T
  for_each_image(g.N, [&](index_t n, bool parallel) {
    T* dxn = dx + n * g.C * g.H * g.W;
    if (!pointwise) std::fill(dxn, dxn + g.C * g.H * g.W, T(0));
    T* dcol = pointwise ? nullptr : static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * P));
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* dyg = dy + (n * g.K + gi * Kg) * P;
      T* dxg = dxn + gi * Cg * g.H * g.W;
      const StridedB<T> source{dyg, P, (index_t)1};
      gemm_prepacked_dispatch(parallel, CgKK, P, Kg, packed.group(gi),
                              BPacker<T>{pack_strided_b<T>, &source}, pointwise ? dxg : dcol, P);
      if (!pointwise) col2im(dcol, Cg, g, dxg, P);
    }
  });
}

template <typename T>
void conv2d_backward_weight_cpu(T* dw, const T* dy, const T* x, const Conv2dGeometry& g) {
  if (is_dense(g)) {  // dw (K x CHW) = dy^T (K x N) * x (N x CHW)
    const index_t D = g.C * g.H * g.W;
    return gemm_parallel_cpu(g.K, D, g.N, dy, (index_t)1, g.K, x, D, (index_t)1, dw, D, false);
  }
  if (use_direct_weight<T>(g))  // before space-to-depth: it takes 4x4 stride-2 layers as they are
    return conv2d_backward_weight_direct<T>(dw, dy, x, g);
  if (use_space_to_depth(g)) {
    const Conv2dGeometry gz = space_to_depth_geometry(g);
    CachedBuffer<T> z((size_t)(gz.N * gz.C * gz.H * gz.W)), dwz((size_t)(g.K * gz.C / g.groups * gz.kh * gz.kw));
    space_to_depth(z.get(), x, g, gz);
    conv2d_backward_weight_cpu(dwz.get(), dy, static_cast<const T*>(z.get()), gz);
    for_each_depth_weight(g, [&](index_t zo, index_t wo) { dw[wo] = dwz.get()[zo]; });
    return;
  }
  if (use_batched(g, sizeof(T))) return conv2d_backward_weight_batched(dw, dy, x, g);
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const index_t wsize = g.K * CgKK;
  // The wide path reduces over each image's Ho*Wp positions at a time, so the (CgKK x Kg)
  // gradient is read and written once per image: worth it from 128 positions on, or when that
  // gradient is small enough to stay in cache (64K values).
  const bool pointwise = is_pointwise(g);
  const bool wide = use_wide(g) && (g.Ho * g.Wo >= 128 || (g.C / g.groups * g.kh * g.kw) * (g.K / g.groups) <= (1 << 16));
  const WideShape ws(g);
  const std::vector<index_t> offsets = wide ? wide_offsets(g, ws) : std::vector<index_t>();
  // dst += dy[n] * col[n]^T for every group of image n; the wide path adds the transpose,
  // dst[g] (CgKK x Kg) += X (CgKK x Nw) * dyw^T, which moves the big operand (X) only once.
  auto accumulate_image = [&](index_t n, T* dst, bool parallel) {
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (n * g.C + gi * Cg) * g.H * g.W;
      const T* dyg = dy + (n * g.K + gi * Kg) * P;
      if (wide) {
        T* xp = static_cast<T*>(thread_scratch(5, sizeof(T) * Cg * ws.Hp * ws.Wp));
        T* dyw = static_cast<T*>(thread_scratch(6, sizeof(T) * Kg * ws.Nw));
        pad_planes(xp, xg, Cg, g, ws);
        widen_rows(dyw, dyg, Kg, g, ws);
        const WideSource<T> source{xp, offsets.data()};
        const APacker<T> columns{pack_wide_rows<T>, &source};
        if (parallel)
          gemm_implicit_a_parallel_cpu(CgKK, Kg, ws.Nw, columns, dyw, (index_t)1, ws.Nw,
                                       dst + gi * Kg * CgKK, Kg, true);
        else
          gemm_implicit_a_cpu(CgKK, Kg, ws.Nw, columns, dyw, (index_t)1, ws.Nw, dst + gi * Kg * CgKK,
                              Kg, true);
        continue;
      }
      const T* B = xg;
      if (!pointwise) {
        T* col = static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * P));
        im2col(xg, Cg, g, col, P);
        B = col;
      }
      // B(k = p, j = r) = col[r][p]: the transposed column matrix, read in place.
      gemm_dispatch(parallel, Kg, CgKK, P, dyg, P, (index_t)1, B, (index_t)1, P,
                    dst + gi * Kg * CgKK, CgKK, true);
    }
  };
  // dw[i] from the sum of the partial gradients' element i (transposed back on the wide path).
  auto source_index = [&](index_t i) {
    if (!wide) return i;
    const index_t gi = i / (Kg * CgKK), k = (i / CgKK) % Kg, r = i % CgKK;
    return (gi * CgKK + r) * Kg + k;
  };
  const int threads = omp_get_max_threads();
  if (g.N >= threads && threads > 1) {
    // One partial dw per thread, summed in thread order: deterministic for a
    // given thread count.
    std::vector<T> partial((size_t)threads * wsize);
    ParallelErrors errors;
#pragma omp parallel
    {
      T* mine = partial.data() + omp_get_thread_num() * wsize;  // zeroed by the vector
#pragma omp for schedule(static)
      for (index_t n = 0; n < g.N; ++n) errors.run([&] { accumulate_image(n, mine, false); });
#pragma omp for schedule(static)
      for (index_t i = 0; i < wsize; ++i) {
        const index_t j = source_index(i);
        T s = T(0);
        for (int u = 0; u < threads; ++u) s += partial[u * wsize + j];
        dw[i] = s;
      }
    }
    errors.rethrow();
  } else if (wide) {
    std::vector<T> sum((size_t)wsize);
    for (index_t n = 0; n < g.N; ++n) accumulate_image(n, sum.data(), true);
    for (index_t i = 0; i < wsize; ++i) dw[i] = sum[source_index(i)];
  } else {
    std::fill(dw, dw + wsize, T(0));
    for (index_t n = 0; n < g.N; ++n) accumulate_image(n, dw, true);
  }
}

template <typename T>
void conv2d_backward_bias_cpu(T* db, const T* dy, index_t N, index_t K, index_t P) {
#pragma omp parallel for schedule(static)
  for (index_t k = 0; k < K; ++k) {
    T s = T(0);
    for (index_t n = 0; n < N; ++n) {
      const T* row = dy + (n * K + k) * P;
      // vector partial sums (a serial sum would wait on each add's latency)
#pragma omp simd reduction(+ : s)
      for (index_t p = 0; p < P; ++p) s += row[p];
    }
    db[k] = s;
  }
}

template <typename T>
void conv2d_forward_reference_cpu(T* y, const T* x, const T* w, const T* b,
                                  const Conv2dGeometry& g) {
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  for (index_t n = 0; n < g.N; ++n)
    for (index_t k = 0; k < g.K; ++k) {
      const index_t gi = k / Kg;
      for (index_t oh = 0; oh < g.Ho; ++oh)
        for (index_t ow = 0; ow < g.Wo; ++ow) {
          T s = b ? b[k] : T(0);
          for (index_t c = 0; c < Cg; ++c)
            for (index_t a = 0; a < g.kh; ++a) {
              const index_t h = oh * g.sh - g.pt + a * g.dh;
              if (h < 0 || h >= g.H) continue;
              for (index_t bb = 0; bb < g.kw; ++bb) {
                const index_t ww = ow * g.sw - g.pl + bb * g.dw;
                if (ww < 0 || ww >= g.W) continue;
                s += x[((n * g.C + gi * Cg + c) * g.H + h) * g.W + ww] *
                     w[((k * Cg + c) * g.kh + a) * g.kw + bb];
              }
            }
          y[((n * g.K + k) * g.Ho + oh) * g.Wo + ow] = s;
        }
    }
}

#define STRIATE_INSTANTIATE_CONV2D(T)                                                          \
  template void conv2d_forward_cpu<T>(T*, const T*, const T*, const T*, const Conv2dGeometry&); \
  template void conv2d_backward_data_cpu<T>(T*, const T*, const T*, const Conv2dGeometry&);     \
  template void conv2d_backward_weight_cpu<T>(T*, const T*, const T*, const Conv2dGeometry&);   \
  template void conv2d_backward_bias_cpu<T>(T*, const T*, index_t, index_t, index_t);           \
  template void conv2d_forward_reference_cpu<T>(T*, const T*, const T*, const T*,               \
                                                const Conv2dGeometry&);
STRIATE_INSTANTIATE_CONV2D(float)
STRIATE_INSTANTIATE_CONV2D(double)

}  // namespace striate
