// dropout.cpp: inverted dropout with a counter-based Philox4x32-10 mask.
// One Philox call yields the four words for elements 4b .. 4b+3, so the
// mask is a pure function of (seed, offset, element index) and does not
// depend on the thread count or on the device (see common/philox.h).
#include "dropout.h"

#include "common/philox.h"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace striate {

namespace {

#if defined(__AVX2__)
// philox_round on 8 counters at once. AVX2 multiplies only the even 32-bit
// lanes into 64 bits (_mm256_mul_epu32), so the odd lanes go through a second
// product of the counters shifted down; the halves are blended back.
inline void mulhilo8(__m256i a, __m256i m, __m256i* lo, __m256i* hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Dropout of 32 float elements, 8 Philox blocks from `block` on: dropout_block() per
// element, bit for bit (the tests compare the masks with the Python Philox).
inline void dropout_32(float* y, uint8_t* mask, const float* x, uint64_t block, uint64_t seed,
                       uint64_t offset, uint32_t threshold, float scale) {
  __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)block),
                                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  // blocks b..b+7 share the high word unless the low word wraps inside the group
  const uint32_t low = (uint32_t)block, high = (uint32_t)(block >> 32);
  alignas(32) uint32_t hi_words[8];
  for (int l = 0; l < 8; ++l) hi_words[l] = high + (low + (uint32_t)l < low ? 1u : 0u);
  __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi_words));
  __m256i c2 = _mm256_set1_epi32((int)(uint32_t)offset);
  __m256i c3 = _mm256_set1_epi32((int)(uint32_t)(offset >> 32));
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
  for (int round = 0; round < 10; ++round) {
    __m256i lo0, hi0, lo1, hi1;
    mulhilo8(c0, m0, &lo0, &hi0);
    mulhilo8(c2, m1, &lo1, &hi1);
    const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
    const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  // Element 4 * l + u takes word u of block l: transpose the 4 x 8 words into element order.
  const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpacklo_epi32(c2, c3);
  const __m256i t2 = _mm256_unpackhi_epi32(c0, c1), t3 = _mm256_unpackhi_epi32(c2, c3);
  const __m256i b04 = _mm256_unpacklo_epi64(t0, t1), b15 = _mm256_unpackhi_epi64(t0, t1);
  const __m256i b26 = _mm256_unpacklo_epi64(t2, t3), b37 = _mm256_unpackhi_epi64(t2, t3);
  const __m256i words[4] = {_mm256_permute2x128_si256(b04, b15, 0x20),
                            _mm256_permute2x128_si256(b26, b37, 0x20),
                            _mm256_permute2x128_si256(b04, b15, 0x31),
                            _mm256_permute2x128_si256(b26, b37, 0x31)};
  const __m256i thr = _mm256_set1_epi32((int)threshold);
  const __m256 vscale = _mm256_set1_ps(scale);
  __m256i keep[4];
  for (int q = 0; q < 4; ++q) {
    // keep: word >= threshold (unsigned), as max(word, threshold) == word; all ones or zero
    keep[q] = _mm256_cmpeq_epi32(_mm256_max_epu32(words[q], thr), words[q]);
    const __m256 factor = _mm256_and_ps(_mm256_castsi256_ps(keep[q]), vscale);
    _mm256_storeu_ps(y + 8 * q, _mm256_mul_ps(_mm256_loadu_ps(x + 8 * q), factor));
  }
  // The 32 keep flags as bytes: saturating packs (per 128-bit half), the halves put back in
  // order, then 0xFF -> 1.
  const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(keep[0], keep[1]),
                                            _mm256_packs_epi32(keep[2], keep[3]));
  const __m256i ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(mask),
                      _mm256_and_si256(ordered, _mm256_set1_epi8(1)));
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
// mulhilo8's 16-lane form.
inline void mulhilo16(__m512i a, __m512i m, __m512i* lo, __m512i* hi) {
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
  *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// dropout_32's AVX-512 form: 64 float elements, 16 Philox blocks from `block` on, bit for bit
// dropout_block() per element.
inline void dropout_64(float* y, uint8_t* mask, const float* x, uint64_t block, uint64_t seed,
                       uint64_t offset, uint32_t threshold, float scale) {
  const uint32_t low = (uint32_t)block, high = (uint32_t)(block >> 32);
  const __m512i vlow = _mm512_set1_epi32((int)low);
  __m512i c0 = _mm512_add_epi32(vlow, _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  // the high word, plus one in the lanes where the low word wrapped
  const __m512i vhigh = _mm512_set1_epi32((int)high);
  __m512i c1 = _mm512_mask_add_epi32(vhigh, _mm512_cmplt_epu32_mask(c0, vlow), vhigh, _mm512_set1_epi32(1));
  __m512i c2 = _mm512_set1_epi32((int)(uint32_t)offset);
  __m512i c3 = _mm512_set1_epi32((int)(uint32_t)(offset >> 32));
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  for (int round = 0; round < 10; ++round) {
    __m512i lo0, hi0, lo1, hi1;
    mulhilo16(c0, m0, &lo0, &hi0);
    mulhilo16(c2, m1, &lo1, &hi1);
    const __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
    const __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  // Element 4 * l + u takes word u of block l. The unpacks work within 128-bit lanes: b04
  // holds blocks 0, 4, 8, 12 (one per lane), b15 1, 5, 9, 13, b26 2, 6, 10, 14, b37 3, 7, 11, 15;
  // two rounds of lane shuffles put blocks 4q .. 4q+3 into words[q].
  const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpacklo_epi32(c2, c3);
  const __m512i t2 = _mm512_unpackhi_epi32(c0, c1), t3 = _mm512_unpackhi_epi32(c2, c3);
  const __m512i b04 = _mm512_unpacklo_epi64(t0, t1), b15 = _mm512_unpackhi_epi64(t0, t1);
  const __m512i b26 = _mm512_unpacklo_epi64(t2, t3), b37 = _mm512_unpackhi_epi64(t2, t3);
  const __m512i e0 = _mm512_shuffle_i32x4(b04, b15, 0x88), e1 = _mm512_shuffle_i32x4(b26, b37, 0x88);  // 0 8 1 9, 2 10 3 11
  const __m512i o0 = _mm512_shuffle_i32x4(b04, b15, 0xDD), o1 = _mm512_shuffle_i32x4(b26, b37, 0xDD);  // 4 12 5 13, 6 14 7 15
  const __m512i words[4] = {_mm512_shuffle_i32x4(e0, e1, 0x88), _mm512_shuffle_i32x4(o0, o1, 0x88),
                            _mm512_shuffle_i32x4(e0, e1, 0xDD), _mm512_shuffle_i32x4(o0, o1, 0xDD)};
  const __m512i thr = _mm512_set1_epi32((int)threshold);
  const __m512 vscale = _mm512_set1_ps(scale);
  uint64_t bits = 0;
  for (int q = 0; q < 4; ++q) {
    // keep: word >= threshold (unsigned); a dropped element is x * 0, as everywhere
    const __mmask16 keep = _mm512_cmpge_epu32_mask(words[q], thr);
    const __m512 factor = _mm512_maskz_mov_ps(keep, vscale);
    _mm512_storeu_ps(y + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(x + 16 * q), factor));
    bits |= (uint64_t)keep << (16 * q);
  }
  _mm512_storeu_si512(mask, _mm512_maskz_mov_epi8((__mmask64)bits, _mm512_set1_epi8(1)));
}
#endif

}  // namespace

template <typename T>
void dropout_forward_cpu(T* y, uint8_t* mask, const T* x, index_t count, uint64_t seed,
                         uint64_t offset, uint64_t threshold, T scale) {
  // Full groups of 16 blocks (64 elements) run the 16 Philox generators
  // side by side in plain arrays, which the compiler turns into SIMD lanes;
  // the tail goes through the shared per-block helper. Both compute
  // exactly dropout_block() per element.
  constexpr index_t LANES = 16;
  const index_t blocks = (count + 3) / 4;
  const index_t full_groups = (count / 4) / LANES;
#if defined(__AVX512F__) && defined(__AVX512BW__)
  // float with a threshold below 2^32 (as below): 16 blocks per AVX-512 step.
  if (sizeof(T) == sizeof(float) && threshold < (uint64_t(1) << 32)) {
    const index_t groups = (count / 4) / 16;
#pragma omp parallel for schedule(static)
    for (index_t o = 0; o < groups; ++o)
      dropout_64(reinterpret_cast<float*>(y) + 64 * o, mask + 64 * o,
                 reinterpret_cast<const float*>(x) + 64 * o, (uint64_t)(16 * o), seed, offset,
                 (uint32_t)threshold, (float)scale);
    for (index_t b = groups * 16; b < blocks; ++b)
      dropout_apply_block(y, mask, x, count, (uint64_t)b, seed, offset, threshold, scale);
    return;
  }
#endif
#if defined(__AVX2__)
  // float with a threshold below 2^32 (p < 1: always, the caller handles p == 1): 8 blocks per
  // AVX2 step. A kept element is x * scale and a dropped one x * 0, as below.
  if (sizeof(T) == sizeof(float) && threshold < (uint64_t(1) << 32)) {
    const index_t octets = (count / 4) / 8;
#pragma omp parallel for schedule(static)
    for (index_t o = 0; o < octets; ++o)
      dropout_32(reinterpret_cast<float*>(y) + 32 * o, mask + 32 * o,
                 reinterpret_cast<const float*>(x) + 32 * o, (uint64_t)(8 * o), seed, offset,
                 (uint32_t)threshold, (float)scale);
    for (index_t b = octets * 8; b < blocks; ++b)
      dropout_apply_block(y, mask, x, count, (uint64_t)b, seed, offset, threshold, scale);
    return;
  }
#endif
#pragma omp parallel for schedule(static)
  for (index_t gi = 0; gi < full_groups; ++gi) {
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    for (index_t l = 0; l < LANES; ++l) {
      const uint64_t b = (uint64_t)(gi * LANES + l);
      c0[l] = (uint32_t)b;
      c1[l] = (uint32_t)(b >> 32);
      c2[l] = (uint32_t)offset;
      c3[l] = (uint32_t)(offset >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      for (index_t l = 0; l < LANES; ++l) philox_round(c0[l], c1[l], c2[l], c3[l], k0, k1);
      k0 += PHILOX_W0;
      k1 += PHILOX_W1;
    }
    const index_t i0 = gi * LANES * 4;
    for (index_t l = 0; l < LANES; ++l) {
      const uint32_t words[4] = {c0[l], c1[l], c2[l], c3[l]};
      for (int u = 0; u < 4; ++u) {
        const index_t i = i0 + 4 * l + u;
        const bool keep = dropout_keep(words[u], threshold);
        mask[i] = (uint8_t)keep;
        y[i] = x[i] * (keep ? scale : T(0));
      }
    }
  }
  for (index_t b = full_groups * LANES; b < blocks; ++b)
    dropout_apply_block(y, mask, x, count, (uint64_t)b, seed, offset, threshold, scale);
}

template <typename T>
void dropout_backward_cpu(T* dx, const T* dy, const uint8_t* mask, index_t count, T scale) {
#pragma omp parallel for schedule(static)
  for (index_t i = 0; i < count; ++i) dx[i] = dy[i] * (mask[i] ? scale : T(0));
}

void philox4x32_10_cpu(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
  Philox4 c;
  for (int i = 0; i < 4; ++i) c.v[i] = ctr[i];
  const Philox4 r = philox4x32_10(c, key[0], key[1]);
  for (int i = 0; i < 4; ++i) out[i] = r.v[i];
}

#define STRIATE_INSTANTIATE_DROPOUT(T)                                                        \
  template void dropout_forward_cpu<T>(T*, uint8_t*, const T*, index_t, uint64_t, uint64_t, \
                                       uint64_t, T);                                        \
  template void dropout_backward_cpu<T>(T*, const T*, const uint8_t*, index_t, T);
STRIATE_INSTANTIATE_DROPOUT(float)
STRIATE_INSTANTIATE_DROPOUT(double)

}  // namespace striate
