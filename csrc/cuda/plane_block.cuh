// plane_block.cuh: helpers of the kernels that give one block a whole
// (n, c) plane at a time and keep a per-cell map of it in shared memory
// (max_unpool2d's winners, max_pool2d's ordered backward): the block size,
// the grid, whether a map of `cells` int32 fits in the shared memory of the
// current device, and the launch with that much dynamic shared memory.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "check.cuh"
#include "common/macros.h"

namespace striate {

constexpr int kPlaneThreads = 512;

// Blocks of kPlaneThreads per multiprocessor that a register-hungry plane
// kernel asks room for (__launch_bounds__): three, or two on sm_75, whose
// multiprocessors hold 1024 threads.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 750
constexpr int kPlaneMinBlocks = 2;
#else
constexpr int kPlaneMinBlocks = 3;
#endif

inline int plane_blocks(index_t planes) {
  const index_t most = 65535 * 16;
  return (int)(planes < most ? planes : most);
}

// An int32 map of `cells` cells fits in one block's shared memory (the
// device's opt-in limit) and its positions fit in int32.
inline bool plane_map_fits(index_t cells) {
  int device = 0, bytes = 0;
  STRIATE_CUDA_CHECK(cudaGetDevice(&device));
  STRIATE_CUDA_CHECK(
      cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return cells <= (index_t)INT32_MAX && (size_t)cells * sizeof(int32_t) <= (size_t)bytes;
}

// Launches kernel<<<plane_blocks(planes), kPlaneThreads, map bytes>>>(args...)
// with the dynamic shared memory limit raised to the map's size.
template <typename... KernelArgs, typename... Args>
void launch_with_plane_map(void (*kernel)(KernelArgs...), index_t planes, index_t cells,
                           cudaStream_t stream, Args... args) {
  const size_t bytes = sizeof(int32_t) * (size_t)cells;
  STRIATE_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  kernel<<<plane_blocks(planes), kPlaneThreads, bytes, stream>>>(args...);
  STRIATE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace striate
