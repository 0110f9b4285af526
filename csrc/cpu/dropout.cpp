// dropout.cpp: inverted dropout with a counter-based Philox4x32-10 mask.
// One Philox call yields the four words for elements 4b .. 4b+3, so the
// mask is a pure function of (seed, offset, element index) and does not
// depend on the thread count or on the device (see common/philox.h).
#include "dropout.h"

#include "common/philox.h"

namespace striate {

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
