// conv_transpose2d.cu: transposed convolution on the GPU, built from the
// convolution kernels in conv2d.cu exactly as csrc/cpu/conv_transpose2d.cpp
// builds it from the CPU ones. With x (N, K, Ho, Wo) and y (N, C, H, W) in
// the geometry of the convolution y -> x:
//   forward   y  = conv2d_backward_data(x, w) + b   (bias added in its epilogue)
//   backward  dx = conv2d_forward(dy, w),  dw = conv2d_backward_weight(x, dy),
//             db = per-channel sum of dy.
#include "conv_transpose2d.h"

namespace striate {

template <typename T>
void conv_transpose2d_forward_cuda(T* y, const T* x, const T* w, const T* b,
                                   const Conv2dGeometry& g, bool allow_tf32, cudaStream_t stream) {
  conv2d_backward_data_cuda(y, x, w, b, g, allow_tf32, stream);
}

template <typename T>
index_t conv_transpose2d_backward_workspace_cuda(const Conv2dGeometry& g) {
  return conv2d_backward_weight_workspace_cuda<T>(g);
}

template <typename T>
void conv_transpose2d_backward_cuda(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w,
                                    const Conv2dGeometry& g, T* workspace,
                                    index_t workspace_count, bool allow_tf32, cudaStream_t stream) {
  if (dx) conv2d_forward_cuda(dx, dy, w, static_cast<const T*>(nullptr), g, allow_tf32, stream);
  if (dw) conv2d_backward_weight_cuda(dw, x, dy, g, workspace, workspace_count, allow_tf32, stream);
  if (db) conv2d_backward_bias_cuda(db, dy, g.N, g.C, g.H * g.W, stream);
}

#define STRIATE_INSTANTIATE_CONV_TRANSPOSE2D_CUDA(T)                                           \
  template void conv_transpose2d_forward_cuda<T>(T*, const T*, const T*, const T*,             \
                                                 const Conv2dGeometry&, bool, cudaStream_t);   \
  template index_t conv_transpose2d_backward_workspace_cuda<T>(const Conv2dGeometry&);         \
  template void conv_transpose2d_backward_cuda<T>(T*, T*, T*, const T*, const T*, const T*,    \
                                                  const Conv2dGeometry&, T*, index_t, bool,    \
                                                  cudaStream_t);
STRIATE_INSTANTIATE_CONV_TRANSPOSE2D_CUDA(float)
STRIATE_INSTANTIATE_CONV_TRANSPOSE2D_CUDA(double)

}  // namespace striate
