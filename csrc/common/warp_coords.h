// warp_coords.h: coordinate math of torch.nn.functional.affine_grid followed
// by grid_sample, shared by the CPU and CUDA warp_affine kernels.
// Output pixel (i, j) of an Ho x Wo image has normalised coordinates
// (x, y) in [-1, 1]; the 2x3 matrix theta maps them to source normalised
// coordinates, which are unnormalised to pixel coordinates of the H x W source.
#pragma once
#include <cmath>

#include "macros.h"

namespace striate {

enum WarpMode : int { WARP_BILINEAR = 0, WARP_NEAREST = 1 };
enum WarpPadding : int { WARP_ZEROS = 0, WARP_BORDER = 1, WARP_REFLECTION = 2 };

// Normalised coordinate of output index i along a side of length n.
STRIATE_HD inline double warp_base_coord(index_t i, index_t n, bool align_corners) {
  if (align_corners) return n > 1 ? -1.0 + 2.0 * (double)i / (double)(n - 1) : 0.0;
  return (2.0 * (double)i + 1.0) / (double)n - 1.0;
}

// Normalised source coordinates (gx, gy) of the normalised output point
// (xn, yn) under theta, one row-major 2x3 matrix (affine_grid).
template <typename T>
STRIATE_HD inline void warp_affine_point(const T* theta, double xn, double yn, double* gx,
                                         double* gy) {
  *gx = (double)theta[0] * xn + (double)theta[1] * yn + (double)theta[2];
  *gy = (double)theta[3] * xn + (double)theta[4] * yn + (double)theta[5];
}

STRIATE_HD inline double warp_unnormalize(double c, index_t n, bool align_corners) {
  return align_corners ? (c + 1.0) * 0.5 * (double)(n - 1) : ((c + 1.0) * (double)n - 1.0) * 0.5;
}

// Reflect c into [lo, hi] (grid_sample's reflect_coordinates, twice the bounds).
// The parity of the number of flips is taken in double: converting a huge
// or non-finite count to an integer is undefined (x86 and CUDA disagree).
STRIATE_HD inline double warp_reflect(double c, double lo2, double hi2) {
  if (lo2 == hi2) return 0.0;
  double lo = lo2 * 0.5, span = (hi2 - lo2) * 0.5;
  c = fabs(c - lo);
  double extra = fmod(c, span);
  double flips = floor(c / span);
  return (fmod(flips, 2.0) == 0.0) ? extra + lo : span - extra + lo;
}

STRIATE_HD inline double warp_clip(double c, index_t n) {
  return c < 0.0 ? 0.0 : (c > (double)(n - 1) ? (double)(n - 1) : c);
}

// Source pixel coordinate after padding_mode is applied (grid_sample's
// compute_coordinates): border clips, reflection reflects then clips.
STRIATE_HD inline double warp_source_coord(double c, index_t n, int padding, bool align_corners) {
  double p = warp_unnormalize(c, n, align_corners);
  if (padding == WARP_BORDER) {
    p = warp_clip(p, n);
  } else if (padding == WARP_REFLECTION) {
    p = align_corners ? warp_reflect(p, 0.0, 2.0 * (double)(n - 1))
                      : warp_reflect(p, -1.0, 2.0 * (double)n - 1.0);
    p = warp_clip(p, n);
  }
  return p;
}

// Sample plane (H x W) at source pixel coordinate (px, py).
template <typename T>
STRIATE_HD inline T warp_sample(const T* plane, index_t H, index_t W, double px, double py,
                                int mode) {
  // Non-finite or huge coordinates sample nothing (and never overflow index_t).
  if (!(px > -1e15 && px < 1e15 && py > -1e15 && py < 1e15)) return T(0);
  if (mode == WARP_NEAREST) {
    index_t x = (index_t)nearbyint(px), y = (index_t)nearbyint(py);
    return (x >= 0 && x < W && y >= 0 && y < H) ? plane[y * W + x] : T(0);
  }
  double fx = floor(px), fy = floor(py);
  index_t x0 = (index_t)fx, y0 = (index_t)fy;
  double ax = px - fx, ay = py - fy;
  double acc = 0.0;
  for (int dy = 0; dy < 2; ++dy) {
    index_t y = y0 + dy;
    if (y < 0 || y >= H) continue;
    double wy = dy ? ay : 1.0 - ay;
    for (int dx = 0; dx < 2; ++dx) {
      index_t x = x0 + dx;
      if (x < 0 || x >= W) continue;
      double wx = dx ? ax : 1.0 - ax;
      acc += wy * wx * (double)plane[y * W + x];
    }
  }
  return T(acc);
}

}  // namespace striate
