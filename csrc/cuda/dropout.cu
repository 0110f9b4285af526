// dropout.cu: inverted dropout on the GPU with the same Philox4x32-10 mask
// as the CPU kernel (common/philox.h): each thread handles one block of four
// elements, i.e. one Philox call, in a grid-stride loop, so the masks are
// bit-identical for the same (seed, offset).
#include "check.cuh"
#include "common/philox.h"
#include "dropout.h"

namespace striate {

template <typename T>
__global__ void dropout_forward_kernel(T* y, uint8_t* mask, const T* x, index_t count,
                                       uint64_t seed, uint64_t offset, uint64_t threshold,
                                       T scale) {
  const index_t blocks = (count + 3) / 4;
  for (index_t b = blockIdx.x * (index_t)blockDim.x + threadIdx.x; b < blocks;
       b += (index_t)gridDim.x * blockDim.x)
    dropout_apply_block(y, mask, x, count, (uint64_t)b, seed, offset, threshold, scale);
}

template <typename T>
__global__ void dropout_backward_kernel(T* dx, const T* dy, const uint8_t* mask, index_t count,
                                        T scale) {
  for (index_t i = blockIdx.x * (index_t)blockDim.x + threadIdx.x; i < count;
       i += (index_t)gridDim.x * blockDim.x)
    dx[i] = dy[i] * (mask[i] ? scale : T(0));
}

namespace {
int grid_for(index_t work, int threads) {
  index_t blocks = (work + threads - 1) / threads;
  return (int)(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}
}  // namespace

template <typename T>
void dropout_forward_cuda(T* y, uint8_t* mask, const T* x, index_t count, uint64_t seed,
                          uint64_t offset, uint64_t threshold, T scale, cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  dropout_forward_kernel<T><<<grid_for((count + 3) / 4, threads), threads, 0, stream>>>(
      y, mask, x, count, seed, offset, threshold, scale);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void dropout_backward_cuda(T* dx, const T* dy, const uint8_t* mask, index_t count, T scale,
                           cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  dropout_backward_kernel<T><<<grid_for(count, threads), threads, 0, stream>>>(dx, dy, mask,
                                                                               count, scale);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template void dropout_forward_cuda<float>(float*, uint8_t*, const float*, index_t, uint64_t,
                                          uint64_t, uint64_t, float, cudaStream_t);
template void dropout_forward_cuda<double>(double*, uint8_t*, const double*, index_t, uint64_t,
                                           uint64_t, uint64_t, double, cudaStream_t);
template void dropout_backward_cuda<float>(float*, const float*, const uint8_t*, index_t, float,
                                           cudaStream_t);
template void dropout_backward_cuda<double>(double*, const double*, const uint8_t*, index_t,
                                            double, cudaStream_t);

}  // namespace striate
