// optim.cpp: fused SGD and Adam updates (optim.h). One pass over the parameter, its gradient
// and its state instead of the three to six numpy passes (each with a temporary) the Python
// update takes; threads split the elements of large parameters. The Python update in
// striate/optim is the reference the tests hold this to, with PyTorch's optimizers.
#include "optim.h"

#include <algorithm>
#include <cmath>

namespace striate {

namespace {
// Parameters smaller than this are updated by one thread (a team costs more).
constexpr index_t kParallelCount = index_t(1) << 15;
}  // namespace

template <typename T>
void sgd_update_cpu(T* p, const T* grad, T* buf, index_t count, const SgdOptions& o, bool first) {
  const T lr = T(o.lr), momentum = T(o.momentum), keep = T(1 - o.dampening), wd = T(o.weight_decay);
  const bool decay = o.weight_decay != 0, with_momentum = o.momentum != 0, nesterov = o.nesterov;
#pragma omp parallel for simd schedule(static) if (count >= kParallelCount)
  for (index_t i = 0; i < count; ++i) {
    T g = grad[i];
    if (decay) g = g + p[i] * wd;
    if (with_momentum) {
      const T b = first ? g : buf[i] * momentum + g * keep;
      buf[i] = b;
      g = nesterov ? g + b * momentum : b;
    }
    p[i] = p[i] + g * -lr;
  }
}

template <typename T>
void adam_update_cpu(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                     index_t count, const AdamOptions& o) {
  const T shrink = T(1 - o.lr * o.weight_decay), wd = T(o.weight_decay);
  const T a1 = T(1 - o.beta1), beta2 = T(o.beta2), a2 = T(1 - o.beta2), eps = T(o.eps);
  const T bc2_sqrt = T(std::sqrt(1 - std::pow(o.beta2, (double)o.step)));
  const T step_size = T(-(o.lr / (1 - std::pow(o.beta1, (double)o.step))));
  const bool decay = o.weight_decay != 0, decoupled = o.decoupled, amsgrad = o.amsgrad;
#pragma omp parallel for simd schedule(static) if (count >= kParallelCount)
  for (index_t i = 0; i < count; ++i) {
    T g = grad[i], w = p[i];
    if (decay) {
      if (decoupled)
        w = w * shrink;
      else
        g = g + w * wd;
    }
    const T m = exp_avg[i] + (g - exp_avg[i]) * a1;
    T v = exp_avg_sq[i] * beta2 + a2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (amsgrad) {
      v = std::max(max_exp_avg_sq[i], v);
      max_exp_avg_sq[i] = v;
    }
    const T denom = std::sqrt(v) / bc2_sqrt + eps;
    p[i] = w + step_size * m / denom;
  }
}

template void sgd_update_cpu<float>(float*, const float*, float*, index_t, const SgdOptions&, bool);
template void sgd_update_cpu<double>(double*, const double*, double*, index_t, const SgdOptions&, bool);
template void adam_update_cpu<float>(float*, const float*, float*, float*, float*, index_t,
                                     const AdamOptions&);
template void adam_update_cpu<double>(double*, const double*, double*, double*, double*, index_t,
                                      const AdamOptions&);

}  // namespace striate
