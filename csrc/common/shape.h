// shape.h: output-size formulas shared by CPU kernels, CUDA kernels and the
// Python layer (through the bound helpers in bind_cpu.cpp), so that every
// layer agrees on one definition. A result <= 0 means "no valid output".
#pragma once
#include "macros.h"

namespace striate {

// Convolution / correlation: input length `in`, total padding `pad_total`
// (before + after), kernel `k`, stride `s`, dilation `d`.
STRIATE_HD inline index_t conv_output_size(index_t in, index_t k, index_t s, index_t pad_total,
                                           index_t d) {
  index_t span = in + pad_total - d * (k - 1) - 1;
  if (span < 0) return 0;
  return span / s + 1;
}

// Transposed convolution (the adjoint geometry of conv_output_size).
STRIATE_HD inline index_t conv_transpose_output_size(index_t in, index_t k, index_t s, index_t pad,
                                                     index_t d, index_t output_padding) {
  return (in - 1) * s - 2 * pad + d * (k - 1) + output_padding + 1;
}

// Pooling, PyTorch's rule: with ceil_mode the last window must start inside
// the input or the left padding, never entirely in the right padding.
STRIATE_HD inline index_t pool_output_size(index_t in, index_t k, index_t s, index_t pad, index_t d,
                                           bool ceil_mode) {
  const index_t span = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  if (span < 0) return 0;  // floor(span / s) + 1 <= 0
  index_t out = span / s + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

// True when every one of the `out` pooling windows along a side holds at
// least one input cell (a dilated window can fall entirely in the padding).
STRIATE_HD inline bool pool_windows_nonempty(index_t in, index_t out, index_t k, index_t s,
                                             index_t pad, index_t d) {
  for (index_t o = 0; o < out; ++o) {
    bool any = false;
    for (index_t a = 0; a < k && !any; ++a) {
      const index_t i = o * s - pad + a * d;
      any = i >= 0 && i < in;
    }
    if (!any) return false;
  }
  return true;
}

// Default output length of max_unpool2d (inverse of an unpadded-floor pooling).
STRIATE_HD inline index_t unpool_output_size(index_t in, index_t k, index_t s, index_t pad) {
  return (in - 1) * s - 2 * pad + k;
}

// pyr_down halves each side, rounding up (cv2.pyrDown's default size).
STRIATE_HD inline index_t pyr_down_output_size(index_t in) { return (in + 1) / 2; }

// pyr_up accepts cv2.pyrUp's output lengths: 2n, or 2n +- 1 (odd).
STRIATE_HD inline bool pyr_up_size_ok(index_t in, index_t out) {
  const index_t diff = out > 2 * in ? out - 2 * in : 2 * in - out;
  return in >= 1 && out >= 1 && diff == out % 2;
}

}  // namespace striate
