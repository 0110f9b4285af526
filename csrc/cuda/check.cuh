// check.cuh: CUDA error checking for striate's kernels. Every launch is
// followed by STRIATE_CUDA_CHECK(cudaGetLastError()); a failure becomes a
// C++ exception carrying CUDA's message, which pybind11 turns into a
// Python RuntimeError.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace striate {

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed at " + file + ":" +
                             std::to_string(line) + ": " + cudaGetErrorString(status));
}

}  // namespace striate

#define STRIATE_CUDA_CHECK(expr) ::striate::cuda_check((expr), #expr, __FILE__, __LINE__)
