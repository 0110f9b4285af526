// bind_dropout.cpp (CUDA): striate._cuda.dropout_forward / dropout_backward.
#include "bind.h"
#include "common/philox.h"
#include "cuda/dropout.h"

namespace striate {
namespace {

void dropout_forward(uintptr_t y, uintptr_t mask, uintptr_t x, index_t count,
                     const std::string& dtype, uint64_t seed, uint64_t offset, double p,
                     double scale, uintptr_t stream) {
  require_cuda(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1]");
  const uint64_t threshold = dropout_threshold(p);
  dispatch_float_name("dropout", dtype, [&](auto t) {
    using T = decltype(t);
    dropout_forward_cuda(device_ptr<T>(y), device_ptr<uint8_t>(mask), device_ptr<const T>(x),
                         count, seed, offset, threshold, (T)scale, as_stream(stream));
  });
}

void dropout_backward(uintptr_t dx, uintptr_t dy, uintptr_t mask, index_t count,
                      const std::string& dtype, double scale, uintptr_t stream) {
  dispatch_float_name("dropout_backward", dtype, [&](auto t) {
    using T = decltype(t);
    dropout_backward_cuda(device_ptr<T>(dx), device_ptr<const T>(dy),
                          device_ptr<const uint8_t>(mask), count, (T)scale, as_stream(stream));
  });
}

}  // namespace

void bind_dropout(py::module_& m) {
  m.def("dropout_forward", &dropout_forward);
  m.def("dropout_backward", &dropout_backward);
}

}  // namespace striate
