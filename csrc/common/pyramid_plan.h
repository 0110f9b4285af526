// pyramid_plan.h: the 1-D operators of pyrDown / pyrUp as explicit tap
// lists (host code), shared by the CPU kernels and the CUDA adjoints.
// Each pyramid step is separable, y = Av * x * Ah^T per plane; a Taps list
// holds one 1-D operator A in CSR form: output o reads src[ptr[o] ..
// ptr[o+1]) with weights wt, built from the per-tap math of pyramid_taps.h.
// transpose_taps gives the adjoint A^T as a gather (for each source index,
// the outputs that read it, in increasing output order), which is how both
// backward passes are computed without scatters.
#pragma once
#include <utility>
#include <vector>

#include "pyramid_taps.h"
#include "shape.h"

namespace striate {

// What the operator is, so the CPU can pick its unrolled interior loops.
enum TapKind { TAPS_GENERIC, TAPS_DOWN, TAPS_UP };

struct Taps {
  TapKind kind = TAPS_GENERIC;
  index_t n_in = 0;  // length of the input side
  std::vector<index_t> ptr{0}, src;
  std::vector<double> wt;
  index_t size() const { return (index_t)ptr.size() - 1; }
  void add(index_t s, double w) {
    src.push_back(s);
    wt.push_back(w);
  }
  void end_output() { ptr.push_back((index_t)src.size()); }
};

// pyr_down along a side of length n: (n+1)/2 outputs of 5 taps each.
inline Taps pyr_down_taps(index_t n) {
  Taps t;
  t.kind = TAPS_DOWN;
  t.n_in = n;
  for (index_t o = 0; o < pyr_down_output_size(n); ++o) {
    for (int a = 0; a < 5; ++a) t.add(pyr_down_source(o, a, n), pyr_kernel_tap(a) / 16.0);
    t.end_output();
  }
  return t;
}

// pyr_up from a side of length n to m outputs (2n, or 2n +- 1); `vertical`
// selects which row/column the extra odd output repeats.
inline Taps pyr_up_taps(index_t n, index_t m, bool vertical) {
  Taps t;
  t.kind = TAPS_UP;
  t.n_in = n;
  for (index_t o = 0; o < m; ++o) {
    const index_t j = pyr_up_effective_output(o, n, vertical);
    for (int a = 0; a < 5; ++a) {
      const index_t s = pyr_up_source(j, a, n);
      if (s >= 0) t.add(s, pyr_kernel_tap(a) / 8.0);
    }
    t.end_output();
  }
  return t;
}

// The adjoint operator: for each source index, the outputs that read it.
inline Taps transpose_taps(const Taps& t, index_t n_src) {
  std::vector<std::vector<std::pair<index_t, double>>> rows(n_src);
  for (index_t o = 0; o < t.size(); ++o)
    for (index_t e = t.ptr[o]; e < t.ptr[o + 1]; ++e) rows[t.src[e]].push_back({o, t.wt[e]});
  Taps r;
  r.n_in = t.size();
  for (const auto& row : rows) {
    for (const auto& entry : row) r.add(entry.first, entry.second);
    r.end_output();
  }
  return r;
}

// The backward passes: pyr_down's adjoint along a side of n inputs, and
// pyr_up's from m outputs back to n inputs.
inline Taps pyr_down_adjoint_taps(index_t n) { return transpose_taps(pyr_down_taps(n), n); }

inline Taps pyr_up_adjoint_taps(index_t n, index_t m, bool vertical) {
  return transpose_taps(pyr_up_taps(n, m, vertical), n);
}

}  // namespace striate
