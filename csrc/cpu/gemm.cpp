// gemm.cpp: BLIS-style blocked GEMM for float and double.
// Loop nest (outer to inner): N in NC panels -> K in KC slices (pack B) ->
// M in MC blocks (pack A) -> NR columns -> MR rows -> micro-kernel.
// The micro-kernel keeps an MR x NR tile of C in registers: NR is
// kGemmVectors (2) vectors of the widest SIMD registers the build targets
// (common/simd.h: 64 bytes with AVX-512, 32 with AVX/AVX2, 16 otherwise),
// MR = gemm_panel_rows() (6) rows, i.e. 12 vector
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

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(kSimdBytes)));
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(kSimdBytes)));
};

constexpr int MR = gemm_panel_rows();
template <typename T>
constexpr int lanes() { return kSimdBytes / (int)sizeof(T); }
template <typename T>
constexpr int NR() { return gemm_panel_width<T>(); }
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
  static thread_local Scratch buffers[kScratchSlots];
  if (slot < 0 || slot >= kScratchSlots) std::abort();  // a programming error, not bad input
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
  constexpr int L = lanes<T>(), NV = kGemmVectors;
  V acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = V{};
  for (index_t k = 0; k < kc; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], Bp + v * L, sizeof(V));
    for (int r = 0; r < MR; ++r) {
      const T a = Ap[r];  // scalar * vector broadcasts
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
    Ap += MR;
    Bp += NV * L;
  }
  if (rows == MR && cols == NV * L) {
    for (int r = 0; r < MR; ++r) {
      T* c = C + r * ldc;
      for (int v = 0; v < NV; ++v) {
        if (accumulate) {
          V old;
          std::memcpy(&old, c + v * L, sizeof(V));
          acc[r][v] += old;
        }
        std::memcpy(c + v * L, &acc[r][v], sizeof(V));
      }
    }
    return;
  }
  alignas(64) T tile[MR][NV * L];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) std::memcpy(&tile[r][v * L], &acc[r][v], sizeof(V));
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c)
      C[r * ldc + c] = accumulate ? C[r * ldc + c] + tile[r][c] : tile[r][c];
}

}  // namespace

namespace {

// The blocked loop nest. get_a(pc, kc, ic, mc) gives A's rows [ic, ic + mc) x depth
// [pc, pc + kc) packed (packing them into scratch, or pointing into an A packed
// beforehand); pack_b(pc, kc, jc, nc, Bp) packs B's rows [pc, pc + kc) x columns
// [jc, jc + nc).
template <typename T, typename GetA, typename PackB>
void gemm_blocked(index_t M, index_t N, index_t K, GetA get_a, PackB pack_b_block, T* C,
                  index_t ldc, bool accumulate) {
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
  for (index_t jc = 0; jc < N; jc += NC) {
    index_t nc = std::min<index_t>(NC, N - jc);
    for (index_t pc = 0; pc < K; pc += KC) {
      index_t kc = std::min<index_t>(KC, K - pc);
      bool acc = accumulate || pc > 0;
      pack_b_block(pc, kc, jc, nc, Bp);
      for (index_t ic = 0; ic < M; ic += MC) {
        index_t mc = std::min<index_t>(MC, M - ic);
        const T* Ap = get_a(pc, kc, ic, mc);
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

// get_a for a strided A: packs each block into the thread's scratch.
template <typename T>
auto strided_a(const T* A, index_t rs_a, index_t cs_a, index_t K) {
  T* Ap = static_cast<T*>(thread_scratch(1, sizeof(T) * std::min<index_t>(KC, K) * (MC + MR)));
  return [=](index_t pc, index_t kc, index_t ic, index_t mc) {
    pack_a(mc, kc, A + ic * rs_a + pc * cs_a, rs_a, cs_a, Ap);
    return static_cast<const T*>(Ap);
  };
}

// get_a for rows [row0, ...) of an A packed by gemm_pack_a_cpu with padded_rows rows.
template <typename T>
auto prepacked_a(const T* Ap, index_t padded_rows, index_t row0) {
  return [=](index_t pc, index_t kc, index_t ic, index_t) { return Ap + pc * padded_rows + (row0 + ic) * kc; };
}

// get_a for rows [row0, ...) of an implicit A, packed into the thread's scratch.
template <typename T>
auto implicit_a(const APacker<T>& A, index_t row0, index_t K) {
  T* Ap = static_cast<T*>(thread_scratch(1, sizeof(T) * std::min<index_t>(KC, K) * (MC + MR)));
  return [&A, row0, Ap](index_t pc, index_t kc, index_t ic, index_t mc) {
    A.pack(A.ctx, row0 + ic, mc, pc, kc, Ap);
    return static_cast<const T*>(Ap);
  };
}

// pack_b for a strided B from column j_base on.
template <typename T>
auto strided_b(const T* B, index_t rs_b, index_t cs_b) {
  return [=](index_t k0, index_t kc, index_t j0, index_t nc, T* Bp) {
    pack_b(kc, nc, B + k0 * rs_b + j0 * cs_b, rs_b, cs_b, Bp);
  };
}

// pack_b for an implicit B from column j_base on.
template <typename T>
auto implicit_b(const BPacker<T>& B, index_t j_base) {
  return [&B, j_base](index_t k0, index_t kc, index_t j0, index_t nc, T* Bp) {
    B.pack(B.ctx, k0, kc, j_base + j0, nc, Bp);
  };
}

// Runs gemm(begin, end) for one slice of [0, total) per thread, slices in multiples of unit.
template <typename F>
void split_over_threads(int threads, index_t total, index_t unit, F gemm) {
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    index_t units = (total + unit - 1) / unit;
    index_t begin = std::min(total, (units * t / nt) * unit);
    index_t end = std::min(total, (units * (t + 1) / nt) * unit);
    if (end > begin) gemm(begin, end);
  }
}

// Whether a GEMM of this size is worth a thread team (and can have one).
inline bool worth_threads(int threads, index_t M, index_t N, index_t K) {
  return threads > 1 && 2.0 * (double)M * (double)N * (double)K >= 2e6 && !omp_in_parallel();
}

// Splits along the larger of M and N (each thread then streams only its share of the larger
// operand: a deep layer's weights, 512 x 4608, against 64 columns, stay split across threads),
// along N when M is too short to give every thread a panel of rows.
inline bool split_columns(int threads, index_t M, index_t N) {
  return N >= M || M < (index_t)threads * MR;
}

}  // namespace

template <typename T>
void gemm_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, const T* B,
              index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  gemm_blocked(M, N, K, strided_a(A, rs_a, cs_a, K), strided_b(B, rs_b, cs_b), C, ldc, accumulate);
}

template <typename T>
void gemm_parallel_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a,
                       const T* B, index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  int threads = omp_get_max_threads();
  if (!worth_threads(threads, M, N, K)) {
    gemm_cpu(M, N, K, A, rs_a, cs_a, B, rs_b, cs_b, C, ldc, accumulate);
    return;
  }
  if (split_columns(threads, M, N))
    split_over_threads(threads, N, NR<T>(), [&](index_t begin, index_t end) {
      gemm_cpu(M, end - begin, K, A, rs_a, cs_a, B + begin * cs_b, rs_b, cs_b, C + begin, ldc,
               accumulate);
    });
  else
    split_over_threads(threads, M, MR, [&](index_t begin, index_t end) {
      gemm_cpu(end - begin, N, K, A + begin * rs_a, rs_a, cs_a, B, rs_b, cs_b, C + begin * ldc,
               ldc, accumulate);
    });
}

index_t gemm_packed_a_rows(index_t M) { return (M + MR - 1) / MR * MR; }

// Threaded over (depth block, row panel) pairs when the weights are large (a deep layer's
// 512 x 4608 weights are 9 MB: packed by one thread, they cost as much as the GEMM that
// uses them on a 2x2 map).
template <typename T>
void gemm_pack_a_cpu(index_t M, index_t K, const T* A, index_t rs_a, index_t cs_a, T* Ap) {
  const index_t padded = gemm_packed_a_rows(M), panels = padded / MR, blocks = (K + KC - 1) / KC;
  const bool threaded = (double)M * (double)K >= 65536.0 && !omp_in_parallel();
#pragma omp parallel for collapse(2) schedule(static) if (threaded)
  for (index_t b = 0; b < blocks; ++b)
    for (index_t p = 0; p < panels; ++p) {
      const index_t pc = b * KC, kc = std::min<index_t>(KC, K - pc), i0 = p * MR;
      pack_a(std::min<index_t>(MR, M - i0), kc, A + pc * cs_a + i0 * rs_a, rs_a, cs_a,
             Ap + pc * padded + i0 * kc);
    }
}

template <typename T>
void gemm_prepacked_cpu(index_t M, index_t N, index_t K, const T* Ap, const BPacker<T>& B, T* C,
                        index_t ldc, bool accumulate) {
  gemm_blocked(M, N, K, prepacked_a(Ap, gemm_packed_a_rows(M), 0), implicit_b(B, 0), C, ldc,
               accumulate);
}

template <typename T>
void gemm_prepacked_parallel_cpu(index_t M, index_t N, index_t K, const T* Ap, const BPacker<T>& B,
                                 T* C, index_t ldc, bool accumulate) {
  int threads = omp_get_max_threads();
  if (!worth_threads(threads, M, N, K)) {
    gemm_prepacked_cpu(M, N, K, Ap, B, C, ldc, accumulate);
    return;
  }
  const index_t padded = gemm_packed_a_rows(M);
  if (split_columns(threads, M, N))
    split_over_threads(threads, N, NR<T>(), [&](index_t begin, index_t end) {
      gemm_blocked(M, end - begin, K, prepacked_a(Ap, padded, 0), implicit_b(B, begin), C + begin,
                   ldc, accumulate);
    });
  else
    split_over_threads(threads, M, MR, [&](index_t begin, index_t end) {
      gemm_blocked(end - begin, N, K, prepacked_a(Ap, padded, begin), implicit_b(B, 0),
                   C + begin * ldc, ldc, accumulate);
    });
}

template <typename T>
void gemm_implicit_a_cpu(index_t M, index_t N, index_t K, const APacker<T>& A, const T* B,
                         index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  gemm_blocked(M, N, K, implicit_a(A, 0, K), strided_b(B, rs_b, cs_b), C, ldc, accumulate);
}

template <typename T>
void gemm_implicit_a_parallel_cpu(index_t M, index_t N, index_t K, const APacker<T>& A, const T* B,
                                  index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate) {
  int threads = omp_get_max_threads();
  if (!worth_threads(threads, M, N, K)) {
    gemm_implicit_a_cpu(M, N, K, A, B, rs_b, cs_b, C, ldc, accumulate);
    return;
  }
  if (split_columns(threads, M, N))
    split_over_threads(threads, N, NR<T>(), [&](index_t begin, index_t end) {
      gemm_blocked(M, end - begin, K, implicit_a(A, 0, K), strided_b(B + begin * cs_b, rs_b, cs_b),
                   C + begin, ldc, accumulate);
    });
  else
    split_over_threads(threads, M, MR, [&](index_t begin, index_t end) {
      gemm_blocked(end - begin, N, K, implicit_a(A, begin, K), strided_b(B, rs_b, cs_b),
                   C + begin * ldc, ldc, accumulate);
    });
}

template <typename T>
void pack_strided_b(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* Bp) {
  const StridedB<T>& b = *static_cast<const StridedB<T>*>(ctx);
  pack_b(kc, nc, b.B + k0 * b.rs + j0 * b.cs, b.rs, b.cs, Bp);
}

#define STRIATE_INSTANTIATE_GEMM(T)                                                              \
  template void gemm_cpu<T>(index_t, index_t, index_t, const T*, index_t, index_t, const T*,     \
                            index_t, index_t, T*, index_t, bool);                                \
  template void gemm_parallel_cpu<T>(index_t, index_t, index_t, const T*, index_t, index_t,      \
                                     const T*, index_t, index_t, T*, index_t, bool);             \
  template void gemm_pack_a_cpu<T>(index_t, index_t, const T*, index_t, index_t, T*);           \
  template void gemm_prepacked_cpu<T>(index_t, index_t, index_t, const T*, const BPacker<T>&,   \
                                      T*, index_t, bool);                                        \
  template void gemm_prepacked_parallel_cpu<T>(index_t, index_t, index_t, const T*,             \
                                               const BPacker<T>&, T*, index_t, bool);            \
  template void pack_strided_b<T>(const void*, index_t, index_t, index_t, index_t, T*);          \
  template void gemm_implicit_a_cpu<T>(index_t, index_t, index_t, const APacker<T>&, const T*,  \
                                       index_t, index_t, T*, index_t, bool);                     \
  template void gemm_implicit_a_parallel_cpu<T>(index_t, index_t, index_t, const APacker<T>&,   \
                                                const T*, index_t, index_t, T*, index_t, bool);
STRIATE_INSTANTIATE_GEMM(float)
STRIATE_INSTANTIATE_GEMM(double)

}  // namespace striate
