// warp.cpp: affine warp with PyTorch's affine_grid + grid_sample conventions
// on the CPU (bilinear or nearest; zeros, border or reflection padding).
// The source coordinate of each output pixel is computed once (in double,
// common/warp_coords.h) and reused for every channel. No backward: the op
// serves data augmentation.
#include "warp.h"

#include "common/warp_coords.h"

namespace striate {

template <typename T>
void warp_affine_forward_cpu(T* y, const T* x, const T* theta, index_t N, index_t C, index_t H,
                             index_t W, index_t Ho, index_t Wo, int mode, int padding,
                             bool align_corners) {
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t n = 0; n < N; ++n)
    for (index_t i = 0; i < Ho; ++i) {
      const T* t = theta + n * 6;
      const double yn = warp_base_coord(i, Ho, align_corners);
      for (index_t j = 0; j < Wo; ++j) {
        const double xn = warp_base_coord(j, Wo, align_corners);
        double gx, gy;
        warp_affine_point(t, xn, yn, &gx, &gy);
        const double px = warp_source_coord(gx, W, padding, align_corners);
        const double py = warp_source_coord(gy, H, padding, align_corners);
        for (index_t c = 0; c < C; ++c)
          y[((n * C + c) * Ho + i) * Wo + j] =
              warp_sample(x + (n * C + c) * H * W, H, W, px, py, mode);
      }
    }
}

template void warp_affine_forward_cpu<float>(float*, const float*, const float*, index_t, index_t,
                                             index_t, index_t, index_t, index_t, int, int, bool);
template void warp_affine_forward_cpu<double>(double*, const double*, const double*, index_t,
                                              index_t, index_t, index_t, index_t, index_t, int, int,
                                              bool);

}  // namespace striate
