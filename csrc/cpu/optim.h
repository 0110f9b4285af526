// optim.h: the optimizers' updates on the CPU, one fused pass over a parameter (optim.cpp);
// torch.optim's single-tensor arithmetic, step by step, in the parameter's precision.
#pragma once
#include <cstdint>

#include "common/macros.h"

namespace striate {

struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

// g = grad + wd * p; buf = first ? g : momentum * buf + (1 - dampening) * g (momentum != 0);
// g = nesterov ? g + momentum * buf : buf; p -= lr * g.          p, buf: updated in place
template <typename T>
void sgd_update_cpu(T* p, const T* grad, T* buf, index_t count, const SgdOptions& o, bool first);

struct AdamOptions {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled, amsgrad;
  std::int64_t step;  // counted from 1
};

// Adam (decoupled: AdamW), torch.optim.Adam's update; max_exp_avg_sq only with amsgrad.
template <typename T>
void adam_update_cpu(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                     index_t count, const AdamOptions& o);

}  // namespace striate
