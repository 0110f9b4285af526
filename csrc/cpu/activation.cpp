// activation.cpp: ReLU and leaky ReLU, one pass each way, OpenMP over chunks.
// The backward reads one saved array (ReLU: its output; leaky ReLU: its
// input) instead of a separately stored mask.
#include "activation.h"

namespace striate {

namespace {
// Below this many elements one thread is faster than waking the team.
constexpr index_t kParallelElements = index_t(1) << 15;
}  // namespace

template <typename T>
void relu_forward_cpu(T* y, const T* x, index_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
  for (index_t i = 0; i < count; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
}

template <typename T>
void relu_backward_cpu(T* dx, const T* dy, const T* y, index_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
  for (index_t i = 0; i < count; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <typename T>
void leaky_relu_forward_cpu(T* y, const T* x, T slope, index_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
  for (index_t i = 0; i < count; ++i) y[i] = x[i] > T(0) ? x[i] : x[i] * slope;
}

template <typename T>
void leaky_relu_backward_cpu(T* dx, const T* dy, const T* x, T slope, index_t count) {
#pragma omp parallel for simd schedule(static) if (count >= kParallelElements)
  for (index_t i = 0; i < count; ++i) dx[i] = x[i] > T(0) ? dy[i] : dy[i] * slope;
}

#define STRIATE_INSTANTIATE_ACTIVATION(T)                                          \
  template void relu_forward_cpu<T>(T*, const T*, index_t);                        \
  template void relu_backward_cpu<T>(T*, const T*, const T*, index_t);             \
  template void leaky_relu_forward_cpu<T>(T*, const T*, T, index_t);               \
  template void leaky_relu_backward_cpu<T>(T*, const T*, const T*, T, index_t);
STRIATE_INSTANTIATE_ACTIVATION(float)
STRIATE_INSTANTIATE_ACTIVATION(double)

}  // namespace striate
