// gemm.h: striate's own cache-blocked matrix multiply (no BLAS).
//   C[M x N] = A[M x K] * B[K x N]            (accumulate == false)
//   C[M x N] += A[M x K] * B[K x N]           (accumulate == true)
// A and B are given by element strides, so any transpose is free:
//   A(i, k) = A[i * rs_a + k * cs_a],  B(k, j) = B[k * rs_b + j * cs_b];
// C is row-major with leading dimension ldc.
// gemm_cpu runs on the calling thread; gemm_parallel_cpu splits the work
// over the OpenMP threads and must be called outside a parallel region.
#pragma once
#include <cstddef>

#include "common/macros.h"
#include "common/simd.h"

namespace striate {

template <typename T>
void gemm_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, const T* B,
              index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);

template <typename T>
void gemm_parallel_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a,
                       const T* B, index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);

// GEMM with A packed once and an implicit B, for many products that share one
// A (a convolution's weights times each image's columns).
//
// B is given by pack(ctx, k0, kc, j0, nc, Bp), which writes rows [k0, k0 + kc)
// x columns [j0, j0 + nc) of B as gemm's packed panels: gemm_panel_width<T>()
// columns per panel, panel after panel, each k-major (Bp[panel][k][c]),
// columns past nc zero. A convolution packs its im2col columns straight from
// the image this way; pack_strided_b with a StridedB reads an ordinary matrix.
template <typename T>
struct BPacker {
  void (*pack)(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* Bp);
  const void* ctx;
};

// The micro-kernel's tile: gemm_panel_rows() rows x kGemmVectors SIMD vectors
// (compile-time, for experiments: on AVX2, 4 x 3 vectors ran conv layers 1.3-1.8x
// slower than the default 6 x 2).
#ifndef STRIATE_GEMM_VECTORS
#define STRIATE_GEMM_VECTORS 2
#endif
#ifndef STRIATE_GEMM_ROWS
#define STRIATE_GEMM_ROWS 6
#endif
constexpr int kGemmVectors = STRIATE_GEMM_VECTORS;

template <typename T>
constexpr int gemm_panel_width() {
  return kGemmVectors * kSimdBytes / (int)sizeof(T);
}

// B(k, j) = B[k * rs + j * cs], as a BPacker: {pack_strided_b<T>, &strided}.
template <typename T>
struct StridedB {
  const T* B;
  index_t rs, cs;
};
template <typename T>
void pack_strided_b(const void* ctx, index_t k0, index_t kc, index_t j0, index_t nc, T* Bp);

// GEMM with an implicit A: pack(ctx, i0, mc, k0, kc, Ap) writes rows
// [i0, i0 + mc) x depth [k0, k0 + kc) of A as gemm_panel_rows() -row panels,
// each k-major (Ap[panel][k][r]), rows past mc zero. A convolution's weight
// gradient packs its image columns this way.
template <typename T>
struct APacker {
  void (*pack)(const void* ctx, index_t i0, index_t mc, index_t k0, index_t kc, T* Ap);
  const void* ctx;
};

constexpr int gemm_panel_rows() { return STRIATE_GEMM_ROWS; }

template <typename T>
void gemm_implicit_a_cpu(index_t M, index_t N, index_t K, const APacker<T>& A, const T* B,
                         index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);
template <typename T>
void gemm_implicit_a_parallel_cpu(index_t M, index_t N, index_t K, const APacker<T>& A, const T* B,
                                  index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);

// A packed by gemm_pack_a_cpu holds gemm_packed_a_rows(M) * K values.
index_t gemm_packed_a_rows(index_t M);
template <typename T>
void gemm_pack_a_cpu(index_t M, index_t K, const T* A, index_t rs_a, index_t cs_a, T* Ap);

// C (+)= A * B with A from gemm_pack_a_cpu (same M and K).
template <typename T>
void gemm_prepacked_cpu(index_t M, index_t N, index_t K, const T* Ap, const BPacker<T>& B, T* C,
                        index_t ldc, bool accumulate);
// The same split over the OpenMP threads (along N when it is wide enough, else M).
template <typename T>
void gemm_prepacked_parallel_cpu(index_t M, index_t N, index_t K, const T* Ap, const BPacker<T>& B,
                                 T* C, index_t ldc, bool accumulate);

// A per-thread, 64-byte aligned scratch buffer that grows and is reused, so
// hot loops do not pay for first-touch page faults on every call.
// slot (< kScratchSlots) selects one of the independent buffers per thread:
// 0 and 1 are the GEMM's packed panels, 2 and 3 conv2d's columns, 4 conv2d's
// B packer row, 5 and 6 its wide path's padded planes and output.
constexpr int kScratchSlots = 7;
void* thread_scratch(int slot, size_t bytes);

}  // namespace striate
