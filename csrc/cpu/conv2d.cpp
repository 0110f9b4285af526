// conv2d.cpp: 2-D cross-correlation on the CPU, forward and backward.
// Fast path: per image and group, im2col into a reused per-thread buffer,
// then striate's blocked GEMM (gemm.cpp):
//   forward        y[n,g]  (Kg x P)    = w[g] (Kg x CgKK) * col[n,g] (CgKK x P)
//   backward data  dcol    (CgKK x P)  = w[g]^T * dy[n,g], then col2im (+=) into dx
//   backward wt.   dw[g]   (Kg x CgKK) = sum_n dy[n,g] * col[n,g]^T
// with P = Ho*Wo and CgKK = C/groups * kh * kw. Images are spread over the
// OpenMP threads when there are at least as many images as threads;
// otherwise each GEMM is split over the threads instead. A 1x1, stride-1,
// unpadded convolution skips im2col. conv2d_forward_reference_cpu is the
// plain loop nest the fast path is tested against.
#include "conv2d.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <vector>

#include "common/shape.h"
#include "gemm.h"

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
  T* col;   // CgKK x NP: the columns of every image, or their gradient
  T* chan;  // Kg x NP: one group's output channels, or their gradient
  explicit Batched(const Conv2dGeometry& g)
      : Cg(g.C / g.groups), Kg(g.K / g.groups), P(g.Ho * g.Wo), NP(g.N * P),
        CgKK(Cg * g.kh * g.kw),
        col(static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * NP))),
        chan(static_cast<T*>(thread_scratch(3, sizeof(T) * Kg * NP))) {}
};

template <typename T>
void conv2d_forward_batched(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g) {
  const Batched<T> s(g);
  const index_t Kg = s.Kg, P = s.P, NP = s.NP, CgKK = s.CgKK;
  T *col = s.col, *out = s.chan;
  for (index_t gi = 0; gi < g.groups; ++gi) {
    im2col_all(x, gi, g, col);
    gemm_parallel_cpu(Kg, NP, CgKK, w + gi * Kg * CgKK, CgKK, (index_t)1, col, NP, (index_t)1,
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
  for (index_t gi = 0; gi < g.groups; ++gi) {
    gather_channels(dyt, dy, g, gi * Kg, Kg);
    // A(i, k) = w[g][k][i]: the transposed weight, read in place.
    gemm_parallel_cpu(CgKK, NP, Kg, w + gi * Kg * CgKK, (index_t)1, CgKK, dyt, NP, (index_t)1,
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

}  // namespace

void set_conv2d_strategy_cpu(int strategy) { conv_strategy.store(strategy); }

index_t conv2d_workspace_values_cpu(const Conv2dGeometry& g, size_t elem) {
  if (use_batched(g, elem)) return batched_values(g);
  const int threads = omp_get_max_threads();
  const index_t users = g.N >= threads && threads > 1 ? threads : 1;  // for_each_image's rule
  const index_t CgKK = g.C / g.groups * g.kh * g.kw;
  const index_t col[] = {is_pointwise(g) ? 0 : CgKK, g.Ho, g.Wo, users};
  const index_t partial[] = {users > 1 ? users : 0, g.K, CgKK};  // backward weight's partial dw
  const index_t a = checked_product(col, 4), b = checked_product(partial, 3);
  index_t total;
  if (a == kSizeOverflow || b == kSizeOverflow || !checked_add(a, b, &total)) return kSizeOverflow;
  return total;
}
int get_conv2d_strategy_cpu() { return conv_strategy.load(); }

template <typename T>
void conv2d_forward_cpu(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g) {
  if (use_batched(g, sizeof(T))) return conv2d_forward_batched(y, x, w, b, g);
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  for_each_image(g.N, [&](index_t n, bool parallel) {
    T* col = pointwise ? nullptr : static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * P));
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (n * g.C + gi * Cg) * g.H * g.W;
      T* yg = y + (n * g.K + gi * Kg) * P;
      const T* B = xg;
      if (!pointwise) {
        im2col(xg, Cg, g, col, P);
        B = col;
      }
      gemm_dispatch(parallel, Kg, P, CgKK, w + gi * Kg * CgKK, CgKK, (index_t)1, B, P,
                    (index_t)1, yg, P, false);
      if (b)
        for (index_t k = 0; k < Kg; ++k) {
          const T bias = b[gi * Kg + k];
          T* row = yg + k * P;
          for (index_t p = 0; p < P; ++p) row[p] += bias;
        }
    }
  });
}

template <typename T>
void conv2d_backward_data_cpu(T* dx, const T* dy, const T* w, const Conv2dGeometry& g) {
  if (use_batched(g, sizeof(T))) return conv2d_backward_data_batched(dx, dy, w, g);
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const bool pointwise = is_pointwise(g);
  for_each_image(g.N, [&](index_t n, bool parallel) {
    T* dxn = dx + n * g.C * g.H * g.W;
    if (!pointwise) std::fill(dxn, dxn + g.C * g.H * g.W, T(0));
    T* dcol = pointwise ? nullptr : static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * P));
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* dyg = dy + (n * g.K + gi * Kg) * P;
      T* dxg = dxn + gi * Cg * g.H * g.W;
      // A(i, k) = w[g][k][i]: the transposed weight, read in place.
      gemm_dispatch(parallel, CgKK, P, Kg, w + gi * Kg * CgKK, (index_t)1, CgKK, dyg, P,
                    (index_t)1, pointwise ? dxg : dcol, P, false);
      if (!pointwise) col2im(dcol, Cg, g, dxg, P);
    }
  });
}

template <typename T>
void conv2d_backward_weight_cpu(T* dw, const T* dy, const T* x, const Conv2dGeometry& g) {
  if (use_batched(g, sizeof(T))) return conv2d_backward_weight_batched(dw, dy, x, g);
  const index_t Cg = g.C / g.groups, Kg = g.K / g.groups;
  const index_t P = g.Ho * g.Wo, CgKK = Cg * g.kh * g.kw;
  const index_t wsize = g.K * CgKK;
  const bool pointwise = is_pointwise(g);
  // dst += dy[n] * col[n]^T for every group of image n.
  auto accumulate_image = [&](index_t n, T* dst, bool parallel) {
    T* col = pointwise ? nullptr : static_cast<T*>(thread_scratch(2, sizeof(T) * CgKK * P));
    for (index_t gi = 0; gi < g.groups; ++gi) {
      const T* xg = x + (n * g.C + gi * Cg) * g.H * g.W;
      const T* B = xg;
      if (!pointwise) {
        im2col(xg, Cg, g, col, P);
        B = col;
      }
      // B(k = p, j = r) = col[r][p]: the transposed column matrix, read in place.
      gemm_dispatch(parallel, Kg, CgKK, P, dy + (n * g.K + gi * Kg) * P, P, (index_t)1, B,
                    (index_t)1, P, dst + gi * Kg * CgKK, CgKK, true);
    }
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
        T s = T(0);
        for (int u = 0; u < threads; ++u) s += partial[u * wsize + i];
        dw[i] = s;
      }
    }
    errors.rethrow();
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
