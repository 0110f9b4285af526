// transpose.h: the CPU kernels' blocked matrix transpose, dst[c * ldd + r] = src[r * lds + c],
// for the packers that turn planes into channel-lanes (the direct convolution's weights and
// gradients). Blocks of one cache line by one cache line, so that neither side streams a whole
// matrix per row of the other; float blocks (whole or ragged) go through AVX-512 registers.
#pragma once
#include <algorithm>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "common/macros.h"

namespace striate {

#if defined(__AVX512F__)
// GCC 12 warns of the intrinsics' own undefined-vector placeholders (-Wuninitialized) once inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// dst[c * ldd + r] = src[r * lds + c] for r < rn, c < cn (both at most 16), in registers:
// pairs of rows interleaved by single values, then by pairs, then the 128-bit lanes gathered in
// two steps. Masked loads and stores touch nothing past rn rows and cn columns.
inline void transpose_16x16(float* dst, index_t ldd, const float* src, index_t lds, index_t rn, index_t cn) {
  const __mmask16 cols = (__mmask16)((1u << cn) - 1), rows = (__mmask16)((1u << rn) - 1);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rn ? _mm512_maskz_loadu_ps(cols, src + i * lds) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  // r[4q + m], 128-bit lane k: rows 4q..4q+3 at column 4k + m
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x88), u1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xDD);
    const __m512 v0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x88),
                 v1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xDD);
    const __m512 out[4] = {_mm512_shuffle_f32x4(u0, v0, 0x88), _mm512_shuffle_f32x4(u1, v1, 0x88),
                           _mm512_shuffle_f32x4(u0, v0, 0xDD), _mm512_shuffle_f32x4(u1, v1, 0xDD)};
    for (int k = 0; k < 4; ++k)  // output row (column of src) 4k + m
      if (4 * k + m < cn) _mm512_mask_storeu_ps(dst + (4 * k + m) * ldd, rows, out[k]);
  }
}
#pragma GCC diagnostic pop
#endif

// dst[c * ldd + r] = src[r * lds + c] for r < rows, c < cols (the regions must not overlap; ldd
// may be negative: rows of dst written last to first).
template <typename T>
void transpose_into(T* dst, index_t ldd, const T* src, index_t lds, index_t rows, index_t cols) {
  constexpr index_t B = 64 / (index_t)sizeof(T);
  for (index_t r0 = 0; r0 < rows; r0 += B)
    for (index_t c0 = 0; c0 < cols; c0 += B) {
      const index_t rn = std::min(B, rows - r0), cn = std::min(B, cols - c0);
      const T* s = src + r0 * lds + c0;
      T* d = dst + c0 * ldd + r0;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        transpose_16x16(d, ldd, s, lds, rn, cn);
        continue;
      }
#endif
      for (index_t r = 0; r < rn; ++r)
        for (index_t c = 0; c < cn; ++c) d[c * ldd + r] = s[r * lds + c];
    }
}

}  // namespace striate
