// shape.h: output-size formulas shared by CPU kernels, CUDA kernels and the
// Python layer (through the bound helpers in bind_cpu.cpp), so that every
// layer agrees on one definition.
//
// Every formula is computed with checked int64 arithmetic: a result that
// would overflow is reported as kSizeOverflow (-1), never wrapped. A result
// of 0 means "no valid output". Geometry arguments (kernel sizes, strides,
// paddings, dilations, requested output lengths) are at most
// kMaxGeometryArgument, checked by striate.ops and again by the bindings;
// with that bound and the lengths of real arrays, every coordinate a kernel
// forms (o*s - p + a*d, ...) fits in int64 once the output size itself was
// computed without overflow.
#pragma once
#include "macros.h"

namespace striate {

// The largest kernel size, stride, padding, dilation or output length accepted
// (2**31 - 1, the int arguments of PyTorch's ops).
constexpr index_t kMaxGeometryArgument = INT32_MAX;
// The size formulas' answer when the arithmetic would overflow int64.
constexpr index_t kSizeOverflow = -1;
constexpr index_t kIndexMax = INT64_MAX;

// r = a + b; false (r untouched) when it would overflow.
STRIATE_HD inline bool checked_add(index_t a, index_t b, index_t* r) {
  if ((b > 0 && a > kIndexMax - b) || (b < 0 && a < -kIndexMax - 1 - b)) return false;
  *r = a + b;
  return true;
}

// r = a * b for a, b >= 0; false (r untouched) when it would overflow or an operand is negative.
STRIATE_HD inline bool checked_mul(index_t a, index_t b, index_t* r) {
  if (a < 0 || b < 0 || (a != 0 && b > kIndexMax / a)) return false;
  *r = a * b;
  return true;
}

// The product of n non-negative sizes, or kSizeOverflow.
STRIATE_HD inline index_t checked_product(const index_t* sizes, int n) {
  index_t r = 1;
  for (int i = 0; i < n; ++i)
    if (!checked_mul(r, sizes[i], &r)) return kSizeOverflow;
  return r;
}

// True when every geometry argument lies in [minimum, kMaxGeometryArgument].
STRIATE_HD inline bool geometry_argument_ok(index_t v, index_t minimum) {
  return v >= minimum && v <= kMaxGeometryArgument;
}

// Convolution / correlation: input length `in` >= 0, total padding `pad_total`
// (before + after) >= 0, kernel `k` >= 1, stride `s` >= 1, dilation `d` >= 1.
STRIATE_HD inline index_t conv_output_size(index_t in, index_t k, index_t s, index_t pad_total,
                                           index_t d) {
  index_t extent, padded;
  if (in < 0 || k < 1 || s < 1 || pad_total < 0 || d < 1) return kSizeOverflow;
  if (!checked_mul(d, k - 1, &extent) || !checked_add(in, pad_total, &padded))
    return kSizeOverflow;
  const index_t span = padded - extent - 1;  // both terms >= 0: no overflow
  if (span < 0) return 0;
  return span / s + 1;
}

// Transposed convolution (the adjoint geometry of conv_output_size):
// (in - 1)*s - 2*pad + d*(k - 1) + output_padding + 1, 0 when that is <= 0.
STRIATE_HD inline index_t conv_transpose_output_size(index_t in, index_t k, index_t s, index_t pad,
                                                     index_t d, index_t output_padding) {
  index_t stretched, extent, twice_pad, r;
  if (in < 1 || k < 1 || s < 1 || pad < 0 || d < 1 || output_padding < 0) return kSizeOverflow;
  if (!checked_mul(in - 1, s, &stretched) || !checked_mul(d, k - 1, &extent) ||
      !checked_mul(pad, 2, &twice_pad) || !checked_add(stretched, extent, &r) ||
      !checked_add(r, output_padding, &r) || !checked_add(r, 1, &r))
    return kSizeOverflow;
  r -= twice_pad;  // r >= 1 and twice_pad >= 0: no overflow
  return r > 0 ? r : 0;
}

// Pooling, PyTorch's rule: with ceil_mode the last window must start inside
// the input or the left padding, never entirely in the right padding.
STRIATE_HD inline index_t pool_output_size(index_t in, index_t k, index_t s, index_t pad, index_t d,
                                           bool ceil_mode) {
  index_t extent, padded;
  if (in < 0 || k < 1 || s < 1 || pad < 0 || d < 1) return kSizeOverflow;
  if (!checked_mul(d, k - 1, &extent) || !checked_mul(pad, 2, &padded) ||
      !checked_add(padded, in, &padded) || !checked_add(padded, ceil_mode ? s - 1 : 0, &padded))
    return kSizeOverflow;
  const index_t span = padded - extent - 1;
  if (span < 0) return 0;  // floor(span / s) + 1 <= 0
  index_t out = span / s + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;  // (out - 1)*s <= span: no overflow
  return out;
}

// True when every one of the `out` pooling windows along a side holds at
// least one input cell (a dilated window can fall entirely in the padding).
// Pooling's precondition pad <= k/2 is part of the contract (a larger pad
// answers false); `out` must come from pool_output_size. Closed form apart
// from windows that start left of the input, and those are looked at only
// when the dilation steps over the whole input (in < d), where pad <= k/2
// leaves at most a handful of them.
STRIATE_HD inline bool pool_windows_nonempty(index_t in, index_t out, index_t k, index_t s,
                                             index_t pad, index_t d) {
  if (out <= 0) return true;
  if (pad > k / 2) return false;
  // The last window starts before `in` (pool_output_size's rule), so a window
  // starting at t >= 0 holds the cell t. With pad <= k/2 <= (k-1)*d a window
  // starting at t in [-pad, 0) reaches its first tap at or right of 0 at
  // t mod d (in [0, d)) within the kernel: in the plane when in > t mod d.
  if (pad == 0 || in >= d) return true;
  for (index_t o = 0; o < out; ++o) {
    const index_t t = o * s - pad;  // o*s <= span of pool_output_size: no overflow
    if (t >= 0) break;
    const index_t first = ((t % d) + d) % d;  // first tap at or right of 0
    if (first >= in) return false;
  }
  return true;
}

// Default output length of max_unpool2d (inverse of an unpadded-floor
// pooling): (in - 1)*s - 2*pad + k, 0 when that is <= 0.
STRIATE_HD inline index_t unpool_output_size(index_t in, index_t k, index_t s, index_t pad) {
  index_t stretched, twice_pad, r;
  if (in < 1 || k < 1 || s < 1 || pad < 0) return kSizeOverflow;
  if (!checked_mul(in - 1, s, &stretched) || !checked_mul(pad, 2, &twice_pad) ||
      !checked_add(stretched, k, &r))
    return kSizeOverflow;
  r -= twice_pad;
  return r > 0 ? r : 0;
}

// pyr_down halves each side, rounding up (cv2.pyrDown's default size).
STRIATE_HD inline index_t pyr_down_output_size(index_t in) { return in / 2 + in % 2; }

// pyr_up accepts cv2.pyrUp's output lengths: 2n, or 2n +- 1 (odd).
STRIATE_HD inline bool pyr_up_size_ok(index_t in, index_t out) {
  if (in < 1 || out < 1 || in > kIndexMax / 2 - 1) return false;
  const index_t diff = out > 2 * in ? out - 2 * in : 2 * in - out;
  return diff == out % 2;
}

}  // namespace striate
