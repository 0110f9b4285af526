// index_flag.cuh: how the CUDA kernels that read user-supplied indices
// (max_pool2d_backward, max_unpool2d) report a bad one. The flag is an int64
// in device memory that the caller (striate.ops, through CuPy) sets to
// INT64_MAX, meaning "none". A kernel that meets a bad index at flat position
// `pos` lowers the flag to pos with an atomic minimum, so the flag ends as
// the smallest bad position whatever the scheduling (the CPU kernels report
// the same one). Kernels never dereference a bad index.
#pragma once
#include <cuda_runtime.h>

#include "common/macros.h"

namespace striate {

__device__ inline void flag_bad_position(int64_t* flag, index_t pos) {
  atomicMin(reinterpret_cast<unsigned long long*>(flag), static_cast<unsigned long long>(pos));
}

}  // namespace striate
