// conv_transpose2d.cpp: transposed convolution on the CPU, built from the
// convolution blocks in conv2d.cpp. A transposed convolution of
// x (N, Cin, H, W) with w (Cin, Cout/groups, kh, kw) into y (N, Cout, Ho, Wo)
// is the backward-data pass of the convolution y -> x with the same w:
//   forward   y  = conv2d_backward_data(x, w) + b
//   backward  dx = conv2d_forward(dy, w),  dw = conv2d_backward_weight(x, dy),
//             db = per-channel sum of dy.
// The Conv2dGeometry passed in describes that convolution (y-space input,
// x-space output).
#include "conv_transpose2d.h"

namespace striate {

template <typename T>
void conv_transpose2d_forward_cpu(T* y, const T* x, const T* w, const T* b,
                                  const Conv2dGeometry& g) {
  conv2d_backward_data_cpu(y, x, w, g);
  if (!b) return;
  const index_t P = g.H * g.W;
#pragma omp parallel for collapse(2) schedule(static)
  for (index_t n = 0; n < g.N; ++n)
    for (index_t c = 0; c < g.C; ++c) {
      T* plane = y + (n * g.C + c) * P;
      const T bias = b[c];
      for (index_t p = 0; p < P; ++p) plane[p] += bias;
    }
}

template <typename T>
void conv_transpose2d_backward_cpu(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                   const Conv2dGeometry& g) {
  if (dx) conv2d_forward_cpu(dx, dy, w, static_cast<const T*>(nullptr), g);
  if (dw) conv2d_backward_weight_cpu(dw, x, dy, g);
  if (db) conv2d_backward_bias_cpu(db, dy, g.N, g.C, g.H * g.W);
}

#define STRIATE_INSTANTIATE_CONV_TRANSPOSE2D(T)                                            \
  template void conv_transpose2d_forward_cpu<T>(T*, const T*, const T*, const T*,         \
                                                const Conv2dGeometry&);                   \
  template void conv_transpose2d_backward_cpu<T>(T*, T*, T*, const T*, const T*, const T*, \
                                                 const Conv2dGeometry&);
STRIATE_INSTANTIATE_CONV_TRANSPOSE2D(float)
STRIATE_INSTANTIATE_CONV_TRANSPOSE2D(double)

}  // namespace striate
