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

namespace striate {

template <typename T>
void gemm_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a, const T* B,
              index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);

template <typename T>
void gemm_parallel_cpu(index_t M, index_t N, index_t K, const T* A, index_t rs_a, index_t cs_a,
                       const T* B, index_t rs_b, index_t cs_b, T* C, index_t ldc, bool accumulate);

// A per-thread, 64-byte aligned scratch buffer that grows and is reused, so
// hot loops do not pay for first-touch page faults on every call.
// slot selects one of a few independent buffers per thread.
void* thread_scratch(int slot, size_t bytes);

}  // namespace striate
