// gemm.cpp: BLIS-style blocked GEMM for float and double.
// Loop nest (outer to inner): N in NC panels -> K in KC slices (pack B) ->
// M in MC blocks (pack A) -> NR columns -> MR rows -> micro-kernel.
// The micro-kernel keeps an MR x NR tile of C in registers: NR is two
// vectors of the widest SIMD registers the build targets (64 bytes with
// AVX-512, 32 with AVX/AVX2, 16 otherwise), MR = 6 rows, i.e. 12 vector
// accumulators plus two B vectors and one broadcast: 15 registers, which
// fits the 16 of AVX2 as well as the 32 of AVX-512. (64-byte vectors on an
// AVX2 machine would need 24 accumulators and spill on every step.)
// GCC vector extensions keep it portable.
#include "gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace striate {

namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};

constexpr int MR = 6;
template <typename T>
constexpr int lanes() { return kVectorBytes / (int)sizeof(T); }
template <typename T>
constexpr int NR() { return 2 * lanes<T>(); }
constexpr index_t KC = 256;
constexpr index_t MC = 72;     // MR * 12: the packed A block stays in L1/L2
constexpr index_t NC = 1536;   // packed B panel (KC x NC) stays in L2

struct Scratch {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~Scratch() { std::free(ptr); }
};

}  // namespace

void* thread_scratch(int slot, size_t bytes) {
  static thread_local Scratch buffers[4];
  Scratch& s = buffers[slot];
  if (bytes > s.bytes) {
    std::free(s.ptr);
    size_t rounded = ((bytes + 63) / 64) * 64;
    s.ptr = std::aligned_alloc(64, rounded);
    if (!s.ptr) throw std::bad_alloc();
    s.bytes = rounded;
  }
  return s.ptr;
}

namespace {

// Pack rows [0, mc) x depth [0, kc) of A into MR-row panels, k-major:
// Ap[panel][k][r]. Rows past mc are zero.
template <typename T>
void pack_a(index_t mc, index_t kc, const T* A, index_t rs, index_t cs, T* Ap) {
  for (index_t i0 = 0; i0 < mc; i0 += MR) {
    index_t rows = std::min<index_t>(MR, mc - i0);
    for (index_t k = 0; k < kc; ++k) {
      for (index_t r = 0; r < rows; ++r) Ap[k * MR + r] = A[(i0 + r) * rs + k * cs];
      for (index_t r = rows; r < MR; ++r) Ap[k * MR + r] = T(0);
    }
    Ap += MR * kc;
  }
}

// Pack depth [0, kc) x columns [0, nc) of B into NR-column panels, k-major:
// Bp[panel][k][c]. Columns past nc are zero.
template <typename T>
void pack_b(index_t kc, index_t nc, const T* B, index_t rs, index_t cs, T* Bp) {
  constexpr int nr = NR<T>();
  for (index_t j0 = 0; j0 < nc; j0 += nr) {
    index_t cols = std::min<index_t>(nr, nc - j0);
    if (cs == 1 && cols == nr) {
      for (index_t k = 0; k < kc; ++k) std::memcpy(Bp + k * nr, B + k * rs + j0, nr * sizeof(T));
    } else if (rs == 1) {
      // Columns are contiguous along k (a transposed B): read each column in
      // one pass and scatter it into the small, cache-resident panel.
      for (index_t c = 0; c < cols; ++c) {
        const T* src = B + (j0 + c) * cs;
        for (index_t k = 0; k < kc; ++k) Bp[k * nr + c] = src[k];
      }
      for (index_t k = 0; k < kc; ++k)
        for (index_t c = cols; c < nr; ++c) Bp[k * nr + c] = T(0);
    } else {
      for (index_t k = 0; k < kc; ++k) {
        const T* src = B + k * rs + j0 * cs;
        T* dst = Bp + k * nr;
        for (index_t c = 0; c < cols; ++c) dst[c] = src[c * cs];
        for (index_t c = cols; c < nr; ++c) dst[c] = T(0);
      }
    }
    Bp += nr * kc;
  }
}

// C[MR x NR] (+)= Ap panel * Bp panel over kc; only the top-left
// rows x cols corner of the tile is written back.
template <typename T>
void micro_kernel(index_t kc, const T* __restrict Ap, const T* __restrict Bp, T* __restrict C,
                  index_t ldc, index_t rows, index_t cols, bool accumulate) {
  typedef typename Vec<T>::type V;
  constexpr int L = lanes<T>();
  V acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = V{} ;
  for (index_t k = 0; k < kc; ++k) {
    V b0, b1;
    std::memcpy(&b0, Bp, sizeof(V));
    std::memcpy(&b1, Bp + L, sizeof(V));
    for (int r = 0; r < MR; ++r) {
      const T a = Ap[r];  // scalar * vector broadcasts
      acc[r][0] += a * b0;
      acc[r][1] += a * b1;
    }
    Ap += MR;
    Bp += 2 * L;
  }
  if (rows == MR && cols == 2 * L) {
    for (int r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
      if (accumulate) {
        V c0, c1;
        std::memcpy(&c0, c, sizeof(V));
        std::memcpy(&c1, c + L, sizeof(V));
        acc[r][0] += c0;
        acc[r][1] += c1;
      }
      std::memcpy(c, &acc[r][0], sizeof(V));
      std::memcpy(c + L, &acc[r][1], sizeof(V));
    }
    return;
  }
  alignas(64) T tile[MR][2 * L];
  for (int r = 0; r < MR; ++r) {
    std::memcpy(&tile[r][0], &acc[r][0], sizeof(V));
    std::memcpy(&tile[r][L], &acc[r][1], sizeof(V));
  }
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c)
      C[r * ldc + c] = accumulate ? C[r * ldc + c] + tile[r][c] : tile[r][c];
}

}  // namespace

template <typename T>
void gemm_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, const T* B,
              index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (index_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    return;
  }
  constexpr int nr = NR<T>();
  index_t nc_max = std::min<index_t>(NC, ((N + nr - 1) / nr) * nr);
  index_t kc_max = std::min<index_t>(KC, K);
  T* Bp = static_cast<T*>(thread_scratch(0, sizeof(T) * kc_max * nc_max));
  T* Ap = static_cast<T*>(thread_scratch(1, sizeof(T) * kc_max * (MC + MR)));
  for (index_t jc = 0; jc < N; jc += NC) {
    index_t nc = std::min<index_t>(NC, N - jc);
    for (index_t pc = 0; pc < K; pc += KC) {
      index_t kc = std::min<index_t>(KC, K - pc);
      bool acc = accumulate || pc > 0;
      pack_b(kc, nc, B + pc * rs_b + jc * cs_b, rs_b, cs_b, Bp);
      for (index_t ic = 0; ic < M; ic += MC) {
        index_t mc = std::min<index_t>(MC, M - ic);
        pack_a(mc, kc, A + ic * rs_a + pc * cs_a, rs_a, cs_a, Ap);
        for (index_t jr = 0; jr < nc; jr += nr) {
          index_t cols = std::min<index_t>(nr, nc - jr);
          const T* bp = Bp + jr * kc;
          for (index_t ir = 0; ir < mc; ir += MR) {
            index_t rows = std::min<index_t>(MR, mc - ir);
            micro_kernel<T>(kc, Ap + ir * kc, bp, C + (ic + ir) * ldc + jc + jr, ldc, rows, cols,
                            acc);
          }
        }
      }
    }
  }
}

template <typename T>
void gemm_parallel_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a,
                       const T* B, index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  int threads = omp_get_max_threads();
  constexpr int nr = NR<T>();
  double flops = 2.0 * (double)M * (double)N * (double)K;
  if (threads <= 1 || flops < 2e6 || omp_in_parallel()) {
    gemm_cpu(M, N, K, A, rs_a, cs_a, B, rs_b, cs_b, C, ldc, accumulate);
    return;
  }
  // Split the wider dimension into per-thread slices (multiples of the tile).
  bool split_n = N >= (index_t)threads * nr || N >= M;
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    index_t total = split_n ? N : M, unit = split_n ? nr : MR;
    index_t units = (total + unit - 1) / unit;
    index_t begin = std::min(total, (units * t / nt) * unit);
    index_t end = std::min(total, (units * (t + 1) / nt) * unit);
    if (end > begin) {
      if (split_n)
        gemm_cpu(M, end - begin, K, A, rs_a, cs_a, B + begin * cs_b, rs_b, cs_b, C + begin, ldc,
                 accumulate);
      else
        gemm_cpu(end - begin, N, K, A + begin * rs_a, rs_a, cs_a, B, rs_b, cs_b, C + begin * ldc,
                 ldc, accumulate);
    }
  }
}

#define STRIATE_INSTANTIATE_GEMM(T)                                                              \
  template void gemm_cpu<T>(index_t, index_t, index_t, const T*, index_t, index_t, const T*,     \
                            index_t, index_t, T*, index_t, bool);                                \
  template void gemm_parallel_cpu<T>(index_t, index_t, index_t, const T*, index_t, index_t,      \
                                     const T*, index_t, index_t, T*, index_t, bool);
STRIATE_INSTANTIATE_GEMM(float)
STRIATE_INSTANTIATE_GEMM(double)

}  // namespace striate
