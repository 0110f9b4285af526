// dropout.cu: inverted dropout on the GPU with the same Philox4x32-10 mask
// as the CPU kernel (common/philox.h): element i takes word i % 4 of the
// Philox call for counter block i / 4, so one call serves four elements and
// the masks are bit-identical for the same (seed, offset).
// Both directions give each thread one block of four elements per step of a
// grid-stride loop. When the pointers allow it (values 16-byte aligned, mask
// 4-byte aligned) a whole block moves as 16-byte value accesses and one
// 4-byte mask word, and the forward issues its loads before the Philox
// rounds; the last partial block, and every block of unaligned arrays, go
// through the scalar per-block helper shared with the CPU.
#include "check.cuh"
#include "common/philox.h"
#include "dropout.h"
#include "vec.cuh"

namespace striate {

namespace {

// 16-byte accesses per block of four values (1 for float, 2 for double).
template <typename T>
constexpr int kAccesses = 4 / kPer16<T>;

// The four values 4b .. 4b+3 of v as kAccesses<T> aligned vectors.
template <typename T>
struct Block4 {
  Vec<T, kPer16<T>> part[kAccesses<T>];
  __device__ T& operator[](int u) { return part[u / kPer16<T>].v[u % kPer16<T>]; }
};

template <typename T>
__device__ inline Block4<T> load_block4(const T* p) {
  Block4<T> b;
#pragma unroll
  for (int a = 0; a < kAccesses<T>; ++a) b.part[a] = load_vec<kPer16<T>>(p + a * kPer16<T>);
  return b;
}

template <typename T>
__device__ inline void store_block4(T* p, const Block4<T>& b) {
#pragma unroll
  for (int a = 0; a < kAccesses<T>; ++a) store_vec(p + a * kPer16<T>, b.part[a]);
}

// dropout_apply_block for a whole, aligned block: the same words, the same
// keep rule and the same product per element; mask byte u is byte u of the
// little-endian mask word.
template <typename T>
__device__ inline void dropout_apply_block_vec(T* y, uint8_t* mask, const T* x, uint64_t block,
                                               uint64_t seed, uint64_t offset,
                                               uint64_t threshold, T scale) {
  const index_t i0 = 4 * (index_t)block;
  Block4<T> v = load_block4(x + i0);
  const Philox4 r = dropout_block(seed, offset, block);
  uint32_t m = 0;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const bool keep = dropout_keep(r.v[u], threshold);
    m |= (uint32_t)keep << (8 * u);
    v[u] = v[u] * (keep ? scale : T(0));
  }
  store_block4(y + i0, v);
  *reinterpret_cast<uint32_t*>(mask + i0) = m;
}

}  // namespace

template <typename T>
__global__ void dropout_forward_kernel(T* __restrict__ y, uint8_t* __restrict__ mask,
                                       const T* __restrict__ x, index_t count, uint64_t seed,
                                       uint64_t offset, uint64_t threshold, T scale,
                                       bool vectors) {
  const index_t blocks = (count + 3) / 4, whole = count / 4;
  for (index_t b = blockIdx.x * (index_t)blockDim.x + threadIdx.x; b < blocks;
       b += (index_t)gridDim.x * blockDim.x) {
    if (vectors && b < whole)
      dropout_apply_block_vec(y, mask, x, (uint64_t)b, seed, offset, threshold, scale);
    else
      dropout_apply_block(y, mask, x, count, (uint64_t)b, seed, offset, threshold, scale);
  }
}

// dx = dy * (mask ? scale : 0), four elements per step.
template <typename T>
__global__ void dropout_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                        const uint8_t* __restrict__ mask, index_t count, T scale,
                                        bool vectors) {
  const index_t blocks = (count + 3) / 4, whole = count / 4;
  for (index_t b = blockIdx.x * (index_t)blockDim.x + threadIdx.x; b < blocks;
       b += (index_t)gridDim.x * blockDim.x) {
    const index_t i0 = 4 * b;
    if (vectors && b < whole) {
      Block4<T> v = load_block4(dy + i0);
      const uint32_t m = *reinterpret_cast<const uint32_t*>(mask + i0);
#pragma unroll
      for (int u = 0; u < 4; ++u) v[u] = v[u] * (((m >> (8 * u)) & 0xffu) ? scale : T(0));
      store_block4(dx + i0, v);
    } else {
      for (index_t i = i0; i < count && i < i0 + 4; ++i) dx[i] = dy[i] * (mask[i] ? scale : T(0));
    }
  }
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
  const bool vectors = aligned(x, 16) && aligned(y, 16) && aligned(mask, 4);
  dropout_forward_kernel<T><<<grid_for((count + 3) / 4, threads), threads, 0, stream>>>(
      y, mask, x, count, seed, offset, threshold, scale, vectors);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void dropout_backward_cuda(T* dx, const T* dy, const uint8_t* mask, index_t count, T scale,
                           cudaStream_t stream) {
  if (count == 0) return;
  const int threads = 256;
  const bool vectors = aligned(dx, 16) && aligned(dy, 16) && aligned(mask, 4);
  dropout_backward_kernel<T><<<grid_for((count + 3) / 4, threads), threads, 0, stream>>>(
      dx, dy, mask, count, scale, vectors);
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
