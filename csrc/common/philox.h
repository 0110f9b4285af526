// philox.h: Philox4x32-10 (Salmon et al., "Parallel Random Numbers: As Easy
// as 1, 2, 3", SC'11), the counter-based generator behind dropout. A dropout
// mask bit is a pure function of (seed, offset, element index), so the CPU
// and CUDA kernels produce identical masks:
//   counter = (i / 4 as 64 bits, offset as 64 bits), key = seed as 64 bits,
//   word    = philox(counter, key)[i % 4],
//   keep    = word >= threshold,  threshold = round(p * 2^32)  (uint64).
#pragma once
#include "macros.h"

namespace striate {

struct Philox4 {
  uint32_t v[4];
};

// One Philox4x32 round on counter words (c0, c1, c2, c3) with key (k0, k1).
// Written on plain scalars so that a loop over independent counters can be
// vectorised (see the CPU dropout kernel).
STRIATE_HD inline void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3,
                                    uint32_t k0, uint32_t k1) {
  const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
  const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
  const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
  const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
  c1 = (uint32_t)p1;
  c3 = (uint32_t)p0;
  c0 = n0;
  c2 = n2;
}

// The key schedule: the Weyl increments added after each round.
constexpr uint32_t PHILOX_W0 = 0x9E3779B9u, PHILOX_W1 = 0xBB67AE85u;

STRIATE_HD inline Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    philox_round(ctr.v[0], ctr.v[1], ctr.v[2], ctr.v[3], k0, k1);
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  return ctr;
}

// The four random words shared by elements 4*block .. 4*block+3.
STRIATE_HD inline Philox4 dropout_block(uint64_t seed, uint64_t offset, uint64_t block) {
  Philox4 ctr;
  ctr.v[0] = (uint32_t)block;
  ctr.v[1] = (uint32_t)(block >> 32);
  ctr.v[2] = (uint32_t)offset;
  ctr.v[3] = (uint32_t)(offset >> 32);
  return philox4x32_10(ctr, (uint32_t)seed, (uint32_t)(seed >> 32));
}

// Keep threshold for drop probability p in [0, 1]: P(word >= t) = 1 - p.
STRIATE_HD inline uint64_t dropout_threshold(double p) {
  double t = p * 4294967296.0;
  if (t <= 0.0) return 0;
  if (t >= 4294967296.0) return 4294967296ull;
  return (uint64_t)(t + 0.5);
}

STRIATE_HD inline bool dropout_keep(uint32_t word, uint64_t threshold) {
  return (uint64_t)word >= threshold;
}

// Dropout of the elements 4*block .. 4*block+3 (fewer at the end): the
// per-element step shared by the CPU loop and the CUDA kernel.
// y = x * (keep ? scale : 0), so a NaN stays NaN, as in PyTorch.
template <typename T>
STRIATE_HD inline void dropout_apply_block(T* y, uint8_t* mask, const T* x, index_t count,
                                           uint64_t block, uint64_t seed, uint64_t offset,
                                           uint64_t threshold, T scale) {
  const Philox4 r = dropout_block(seed, offset, block);
  const index_t i0 = 4 * (index_t)block;
  const int n = (int)(count - i0 < 4 ? count - i0 : 4);
  for (int u = 0; u < n; ++u) {
    const bool keep = dropout_keep(r.v[u], threshold);
    mask[i0 + u] = (uint8_t)keep;
    y[i0 + u] = x[i0 + u] * (keep ? scale : T(0));
  }
}

}  // namespace striate
