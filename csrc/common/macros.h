// macros.h: the few definitions every kernel file needs.
// STRIATE_HD marks per-element math shared by the CPU loops and the CUDA
// kernels: __host__ __device__ under nvcc, a plain inline function otherwise.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define STRIATE_HD __host__ __device__
#else
#define STRIATE_HD
#endif

namespace striate {
using index_t = int64_t;
}  // namespace striate
