// conv2d.h: the three convolution building blocks shared by conv2d.cpp and
// conv_transpose2d.cpp (a transposed convolution is a convolution's
// backward-data pass, and vice versa).
// Geometry of a cross-correlation x (N, C, H, W) * w (K, C/groups, kh, kw)
// -> y (N, K, Ho, Wo); padding may differ per side (top/left given, the
// bottom/right amount is implied by Ho/Wo).
#pragma once
#include <cstddef>

#include "common/macros.h"

namespace striate {

struct Conv2dGeometry {
  index_t N, C, H, W;    // input
  index_t K, Ho, Wo;     // output
  index_t kh, kw, sh, sw, pt, pl, dh, dw, groups;
};

// y = conv(x, w) + b        (b may be null)                    y:  =
template <typename T>
void conv2d_forward_cpu(T* y, const T* x, const T* w, const T* b, const Conv2dGeometry& g);

// dx = conv^T(dy, w)                                           dx: =
template <typename T>
void conv2d_backward_data_cpu(T* dx, const T* dy, const T* w, const Conv2dGeometry& g);

// dw = sum_n dy[n] (x) x[n]                                   dw: =
template <typename T>
void conv2d_backward_weight_cpu(T* dw, const T* dy, const T* x, const Conv2dGeometry& g);

// db[k] = sum over n and the P positions of dy (N, K, P)       db: =
template <typename T>
void conv2d_backward_bias_cpu(T* db, const T* dy, index_t N, index_t K, index_t P);

// How conv2d_*_cpu lay out their GEMMs: CONV2D_PER_IMAGE runs one GEMM per
// image and group (images over threads), CONV2D_BATCHED puts the columns of
// all images side by side (one wide GEMM per group: layers with few output
// positions per image), CONV2D_DIRECT runs every stride-1 (and 3x3 or 4x4
// stride-2) convolution on the direct kernels (no GEMM: forward, backward data
// at stride 1, the weight gradient of undilated 2x2, 3x3 and 5x5 kernels and of
// 3x3 and 4x4 ones at stride 2; the rest as AUTO), CONV2D_AUTO picks by shape.
// Tests force each one.
enum Conv2dStrategy : int { CONV2D_AUTO = 0, CONV2D_PER_IMAGE = 1, CONV2D_BATCHED = 2, CONV2D_DIRECT = 3 };
void set_conv2d_strategy_cpu(int strategy);
int get_conv2d_strategy_cpu();

// Scratch values (of elem bytes each) the passes above take for g under the
// current strategy and thread count: the per-image path's im2col buffer on
// every thread that runs images plus backward-weight's partial sums, or the
// batched path's buffers. kSizeOverflow when not countable. striate.ops checks
// it against the device's memory before calling.
index_t conv2d_workspace_values_cpu(const Conv2dGeometry& g, size_t elem);

// The plain reference loops the fast paths above are tested against.
template <typename T>
void conv2d_forward_reference_cpu(T* y, const T* x, const T* w, const T* b,
                                  const Conv2dGeometry& g);

}  // namespace striate
