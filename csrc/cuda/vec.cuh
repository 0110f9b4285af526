// vec.cuh: aligned vector accesses for the memory-bound kernels (pool2d,
// unpool2d, dropout). A Vec<T, N> is N values of T read or written as one
// aligned access (16 bytes is the widest single access; a wider Vec is
// split by the compiler into 16-byte ones). Launchers check alignment with
// `aligned` and fall back to scalar code when a pointer or a row length
// does not allow the vector path.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace striate {

template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

// Values of T in one 16-byte access.
template <typename T>
constexpr int kPer16 = 16 / (int)sizeof(T);

inline bool aligned(const void* p, size_t bytes) {
  return reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

template <int N, typename T>
__host__ __device__ inline Vec<T, N> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, N>*>(p);
}

template <int N, typename T>
__host__ __device__ inline void store_vec(T* p, const Vec<T, N>& v) {
  *reinterpret_cast<Vec<T, N>*>(p) = v;
}

}  // namespace striate
