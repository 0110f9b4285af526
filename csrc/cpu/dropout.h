// dropout.h: Philox dropout kernels (see dropout.cpp and common/philox.h).
#pragma once
#include "common/macros.h"

namespace striate {

// y = x * mask * scale, mask[i] = keep(seed, offset, i)            y, mask: =
template <typename T>
void dropout_forward_cpu(T* y, uint8_t* mask, const T* x, index_t count, uint64_t seed,
                         uint64_t offset, uint64_t threshold, T scale);

// dx = dy * mask * scale                                          dx: =
template <typename T>
void dropout_backward_cpu(T* dx, const T* dy, const uint8_t* mask, index_t count, T scale);

// The raw Philox4x32-10 block function, bound for the known-answer tests.
void philox4x32_10_cpu(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

}  // namespace striate
