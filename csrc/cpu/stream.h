// stream.h: writes of outputs far larger than the caches with non-temporal stores. A plain
// store first reads the line it writes into the cache (read for ownership); for an output
// that will not stay in cache anyway that read is a third of the memory traffic, which a copy
// (rep movsb) avoids. Kernels build a span of output in an L1-sized buffer and stream it out
// (avg_pool2d backward, max_unpool2d forward; dropout's forward, bound by its Philox rounds,
// ran 40% slower streamed and is not).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "common/macros.h"

namespace striate {

// Outputs of at least this many bytes go out streamed (a few times a core's L2: smaller ones
// are likely read again soon, by the next layer, from the cache).
constexpr index_t kStreamBytes = index_t(16) << 20;

// dst[0, n) = src[0, n), the 64-byte-aligned lines of dst with non-temporal stores (plain ones
// without AVX-512). Call stream_fence() before other threads read dst.
template <typename T>
inline void stream_copy(T* dst, const T* src, index_t n) {
#if defined(__AVX512F__)
  constexpr index_t L = 64 / (index_t)sizeof(T);
  index_t i = 0;
  while (i < n && reinterpret_cast<std::uintptr_t>(dst + i) % 64 != 0) dst[i] = src[i], ++i;
  for (; i + L <= n; i += L)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
  for (; i < n; ++i) dst[i] = src[i];
#else
  std::memcpy(dst, src, (size_t)n * sizeof(T));
#endif
}

// Orders this thread's streamed stores before its later ones (and the barrier after them).
inline void stream_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

}  // namespace striate
