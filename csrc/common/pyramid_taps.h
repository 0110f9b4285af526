// pyramid_taps.h: the 1-D taps of OpenCV's pyrDown / pyrUp, shared by the
// CPU and CUDA kernels. Both are separable with the binomial kernel
// [1 4 6 4 1]; every border is BORDER_REFLECT_101.
//   pyr_down: y[i] = sum_a k[a]/16 * x[reflect101(2i + a - 2, n)]
//   pyr_up:   y[j] = sum_a k[a]/8  * u[reflect101(j + a - 2, 2n)],
//             u = x upsampled with zeros (u[2t] = x[t], u[odd] = 0), n = input length.
// Out of the 5 taps of pyr_up, at most 3 land on even (non-zero) samples.
// cv2.pyrUp also accepts an odd output length 2n - 1 (the 2n result,
// cropped) or 2n + 1: the extra last row repeats row 2n - 2 and the extra
// last column repeats column 2n - 1 (OpenCV's behaviour, reproduced here).
#pragma once
#include "macros.h"
#include "pad_index.h"

namespace striate {

STRIATE_HD inline int pyr_kernel_tap(int a) { return a == 2 ? 6 : (a == 1 || a == 3) ? 4 : 1; }

// Source index and integer weight (out of 16) of tap a in [0, 5) of pyr_down.
STRIATE_HD inline index_t pyr_down_source(index_t i, int a, index_t n) {
  return reflect101(2 * i + a - 2, n);
}

// The output index whose value output j takes (j itself below 2n).
STRIATE_HD inline index_t pyr_up_effective_output(index_t j, index_t n, bool vertical) {
  if (j < 2 * n) return j;
  return vertical ? 2 * n - 2 : 2 * n - 1;
}

// Tap a of pyr_up output j < 2n: the source index into x, or -1 when the
// tap falls on an inserted zero.
STRIATE_HD inline index_t pyr_up_source(index_t j, int a, index_t n) {
  const index_t t = reflect101(j + a - 2, 2 * n);
  return (t & 1) ? -1 : t >> 1;
}

}  // namespace striate
