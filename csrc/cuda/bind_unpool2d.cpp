// bind_unpool2d.cpp (CUDA): striate._cuda max-unpooling. The forward is two
// calls (winners, then the gather into y) so that striate.ops can read the
// bad-index flag in between and leave y unwritten on error.
#include <limits>

#include "bind.h"
#include "cuda/unpool2d.h"

namespace striate {
namespace {

void check_extents(const char* op, index_t planes, index_t in_plane, index_t out_plane) {
  require_cuda(planes >= 1 && in_plane >= 1 && out_plane >= 1,
               std::string(op) + ": planes and plane sizes must be >= 1");
}

// Calls f(Wi{}) with the winner workspace type named by `winner_dtype`;
// int32 only when every input position of a plane fits in it.
template <typename F>
void dispatch_winner(const std::string& winner_dtype, index_t in_plane, F f) {
  if (winner_dtype == "int64") return f(int64_t{});
  require_cuda(winner_dtype == "int32",
               "max_unpool2d: winner workspace must be int32 or int64, got " + winner_dtype);
  require_cuda(in_plane <= std::numeric_limits<int32_t>::max(),
               "max_unpool2d: an int32 winner workspace needs planes below 2**31 cells");
  f(int32_t{});
}

void max_unpool2d_winners(uintptr_t winner, uintptr_t flag, uintptr_t indices,
                          const std::string& winner_dtype, index_t planes, index_t in_plane,
                          index_t out_plane, uintptr_t stream) {
  check_extents("max_unpool2d", planes, in_plane, out_plane);
  dispatch_winner(winner_dtype, in_plane, [&](auto w) {
    using Wi = decltype(w);
    max_unpool2d_winners_cuda(device_ptr<Wi>(winner), device_ptr<int64_t>(flag),
                              device_ptr<const int64_t>(indices), planes, in_plane, out_plane,
                              as_stream(stream));
  });
}

void max_unpool2d_forward(uintptr_t y, uintptr_t x, uintptr_t winner, const std::string& dtype,
                          const std::string& winner_dtype, index_t planes, index_t in_plane,
                          index_t out_plane, uintptr_t stream) {
  check_extents("max_unpool2d", planes, in_plane, out_plane);
  dispatch_float_name("max_unpool2d", dtype, [&](auto t) {
    using T = decltype(t);
    dispatch_winner(winner_dtype, in_plane, [&](auto w) {
      using Wi = decltype(w);
      max_unpool2d_forward_cuda(device_ptr<T>(y), device_ptr<const T>(x),
                                device_ptr<const Wi>(winner), planes, in_plane, out_plane,
                                as_stream(stream));
    });
  });
}

void max_unpool2d_backward(uintptr_t dx, uintptr_t flag, uintptr_t dy, uintptr_t indices,
                           const std::string& dtype, index_t planes, index_t in_plane,
                           index_t out_plane, uintptr_t stream) {
  check_extents("max_unpool2d_backward", planes, in_plane, out_plane);
  dispatch_float_name("max_unpool2d_backward", dtype, [&](auto t) {
    using T = decltype(t);
    max_unpool2d_backward_cuda(device_ptr<T>(dx), device_ptr<int64_t>(flag),
                               device_ptr<const T>(dy), device_ptr<const int64_t>(indices),
                               planes, in_plane, out_plane, as_stream(stream));
  });
}

}  // namespace

void bind_unpool2d(py::module_& m) {
  m.def("max_unpool2d_winners", &max_unpool2d_winners);
  m.def("max_unpool2d_forward", &max_unpool2d_forward);
  m.def("max_unpool2d_backward", &max_unpool2d_backward);
}

}  // namespace striate
