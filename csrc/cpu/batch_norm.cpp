// batch_norm.cpp: batch normalisation, forward and backward, one channel per
// OpenMP iteration. The statistics take one pass over x: sums of x - x0 and
// (x - x0)^2 in double, with x0 the channel's first value (the "shifted data"
// algorithm: no cancellation when the values sit far from zero). The forward
// then writes y = x * scale + shift in a second pass; the backward reads g and
// x once for the two channel sums and once more to write dx.
#include "batch_norm.h"

#include <omp.h>

#include <cmath>

namespace striate {

namespace {

// Whether to split channels over threads: only when there is work enough to share.
inline bool worth_threads(index_t N, index_t C, index_t S) { return N * C * S >= (1 << 15); }

// Sums over the (N, S) values of channel c: of (a - a0) and (a - a0)^2, a0 = a's first value.
template <typename T>
void shifted_sums(const T* a, index_t N, index_t C, index_t S, index_t c, double* a0, double* s1,
                  double* s2) {
  const double shift = a[c * S];
  double sum = 0.0, squares = 0.0;
  for (index_t n = 0; n < N; ++n) {
    const T* row = a + (n * C + c) * S;
#pragma omp simd reduction(+ : sum, squares)
    for (index_t s = 0; s < S; ++s) {
      const double d = (double)row[s] - shift;
      sum += d;
      squares += d * d;
    }
  }
  *a0 = shift;
  *s1 = sum;
  *s2 = squares;
}

// y = x * scale + shift over channel c.
template <typename T>
void affine_channel(T* y, const T* x, index_t N, index_t C, index_t S, index_t c, T scale, T shift) {
  for (index_t n = 0; n < N; ++n) {
    const T* src = x + (n * C + c) * S;
    T* dst = y + (n * C + c) * S;
#pragma omp simd
    for (index_t s = 0; s < S; ++s) dst[s] = src[s] * scale + shift;
  }
}

}  // namespace

template <typename T>
void batch_norm_forward_cpu(T* y, T* mean, T* var_unbiased, T* invstd, const T* x, const T* w,
                            const T* b, index_t N, index_t C, index_t S, double eps) {
  const double count = (double)N * (double)S;
#pragma omp parallel for schedule(static) if (worth_threads(N, C, S))
  for (index_t c = 0; c < C; ++c) {
    double x0, s1, s2;
    shifted_sums(x, N, C, S, c, &x0, &s1, &s2);
    const double m = x0 + s1 / count;
    double var = (s2 - s1 * s1 / count) / count;  // biased
    if (var < 0.0) var = 0.0;
    const double inv = 1.0 / std::sqrt(var + eps);
    const double scale = (w ? (double)w[c] : 1.0) * inv;
    const double shift = (b ? (double)b[c] : 0.0) - m * scale;
    mean[c] = (T)m;
    var_unbiased[c] = (T)(count > 1.0 ? var * count / (count - 1.0) : NAN);
    invstd[c] = (T)inv;
    affine_channel(y, x, N, C, S, c, (T)scale, (T)shift);
  }
}

template <typename T>
void batch_norm_backward_cpu(T* dx, T* dw, T* db, const T* g, const T* x, const T* w,
                             const T* mean, const T* invstd, index_t N, index_t C, index_t S) {
  const double count = (double)N * (double)S;
#pragma omp parallel for schedule(static) if (worth_threads(N, C, S))
  for (index_t c = 0; c < C; ++c) {
    const double m = mean[c], inv = invstd[c];
    double sg = 0.0, sgx = 0.0;  // sum g, sum g * (x - mean)
    for (index_t n = 0; n < N; ++n) {
      const T* gr = g + (n * C + c) * S;
      const T* xr = x + (n * C + c) * S;
#pragma omp simd reduction(+ : sg, sgx)
      for (index_t s = 0; s < S; ++s) {
        sg += (double)gr[s];
        sgx += (double)gr[s] * ((double)xr[s] - m);
      }
    }
    if (db) db[c] = (T)sg;
    if (dw) dw[c] = (T)(sgx * inv);
    if (!dx) continue;
    // dx = k (g - sg / count - xhat * sum(g xhat) / count), xhat = (x - mean) inv,
    // as a * g + bx * x + c0 per element.
    const double k = (w ? (double)w[c] : 1.0) * inv;
    const double bx = -k * inv * inv * sgx / count;
    const double c0 = -k * sg / count - bx * m;
    const T a = (T)k, bt = (T)bx, ct = (T)c0;
    for (index_t n = 0; n < N; ++n) {
      const T* gr = g + (n * C + c) * S;
      const T* xr = x + (n * C + c) * S;
      T* dr = dx + (n * C + c) * S;
#pragma omp simd
      for (index_t s = 0; s < S; ++s) dr[s] = a * gr[s] + bt * xr[s] + ct;
    }
  }
}

#define STRIATE_INSTANTIATE_BATCH_NORM(T)                                                      \
  template void batch_norm_forward_cpu<T>(T*, T*, T*, T*, const T*, const T*, const T*,        \
                                          index_t, index_t, index_t, double);                  \
  template void batch_norm_backward_cpu<T>(T*, T*, T*, const T*, const T*, const T*, const T*, \
                                           const T*, index_t, index_t, index_t);
STRIATE_INSTANTIATE_BATCH_NORM(float)
STRIATE_INSTANTIATE_BATCH_NORM(double)

}  // namespace striate
