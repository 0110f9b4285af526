// bind_warp.cpp (CUDA): striate._cuda.warp_affine_forward.
#include "bind.h"
#include "common/warp_coords.h"
#include "cuda/warp.h"

namespace striate {
namespace {

void warp_affine_forward(uintptr_t y, uintptr_t x, uintptr_t theta, const std::string& dtype,
                         index_t N, index_t C, index_t H, index_t W, index_t Ho, index_t Wo,
                         int mode, int padding, bool align_corners, uintptr_t stream) {
  require_cuda(N >= 1 && C >= 1 && H >= 1 && W >= 1 && Ho >= 1 && Wo >= 1,
               "warp_affine: every size must be positive");
  require_cuda(mode == WARP_BILINEAR || mode == WARP_NEAREST, "warp_affine: unknown mode");
  require_cuda(padding == WARP_ZEROS || padding == WARP_BORDER || padding == WARP_REFLECTION,
               "warp_affine: unknown padding_mode");
  dispatch_float_name("warp_affine", dtype, [&](auto t) {
    using T = decltype(t);
    warp_affine_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x), device_ptr<const T>(theta),
                             N, C, H, W, Ho, Wo, mode, padding, align_corners, as_stream(stream));
  });
}

}  // namespace

void bind_warp(py::module_& m) { m.def("warp_affine_forward", &warp_affine_forward); }

}  // namespace striate
