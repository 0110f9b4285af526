// pad_index.h: where a padded coordinate reads from. `i` is a coordinate in
// the unpadded frame (negative or >= n inside the border); the result is the
// source index in [0, n), or -1 for constant padding outside the image.
// Used by pad2d, conv2d's padding_mode (through pad2d), the pyramids
// (reflect101) and warp_affine.
#pragma once
#include "macros.h"

namespace striate {

enum PadMode : int { PAD_CONSTANT = 0, PAD_REFLECT = 1, PAD_REPLICATE = 2, PAD_CIRCULAR = 3 };

// Reflection without repeating the edge (PyTorch "reflect", OpenCV
// BORDER_REFLECT_101), folded as often as needed so any offset is valid.
STRIATE_HD inline index_t reflect101(index_t i, index_t n) {
  if (n == 1) return 0;
  index_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

STRIATE_HD inline index_t pad_source_index(index_t i, index_t n, int mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PAD_REFLECT: return reflect101(i, n);
    case PAD_REPLICATE: return i < 0 ? 0 : n - 1;
    case PAD_CIRCULAR: {
      index_t r = i % n;
      return r < 0 ? r + n : r;
    }
    default: return -1;
  }
}

}  // namespace striate
