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
  const index_t blocks = (count + 3) / 4;
#pragma omp parallel for schedule(static)
  for (index_t b = 0; b < blocks; ++b)
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
