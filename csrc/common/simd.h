// simd.h: the vector width the CPU kernels are compiled for (bytes): 64 with
// AVX-512, 32 with AVX/AVX2, 16 otherwise (SSE2/NEON). The GEMM's micro-kernel
// tile and the packers that feed it are sized from it.
#pragma once

namespace striate {

#if defined(__AVX512F__)
constexpr int kSimdBytes = 64;
#elif defined(__AVX__)
constexpr int kSimdBytes = 32;
#else
constexpr int kSimdBytes = 16;
#endif

}  // namespace striate
