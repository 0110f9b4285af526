"""Adam and AdamW, with torch.optim's single-tensor update (``foreach=False``).

Per parameter, with step t counted from 1::

    g = grad + weight_decay * p                      (Adam, if weight_decay)
    p = p * (1 - lr * weight_decay)                  (AdamW: decoupled decay)
    m = m + (1 - beta1) * (g - m)                    (torch's lerp)
    v = beta2 * v + (1 - beta2) * g * g
    v_max = max(v_max, v); use v_max for v           (amsgrad)
    denom = sqrt(v) / sqrt(1 - beta2**t) + eps
    p = p - (lr / (1 - beta1**t)) * m / denom

State per parameter: ``step`` (a number), ``exp_avg``, ``exp_avg_sq`` and,
with amsgrad, ``max_exp_avg_sq``.
"""
from __future__ import annotations

from .. import _cpu
from ..tensor import zeros
from .optimizer import Optimizer, fused_arrays


class Adam(Optimizer):
    """Adam as in ``torch.optim.Adam``.

    Args:
        params: Tensors or parameter groups (dicts).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator.
        weight_decay: L2 penalty added to the gradient (AdamW: decoupled decay).
        amsgrad: normalise by the running maximum of the second moment.
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        name = type(self).__name__
        if lr < 0.0:
            raise ValueError(f"{name}: invalid learning rate {lr}; expected lr >= 0")
        if eps < 0.0:
            raise ValueError(f"{name}: invalid eps {eps}; expected eps >= 0")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta at index {i}: {beta}; expected 0 <= beta < 1")
        if weight_decay < 0.0:
            raise ValueError(f"{name}: invalid weight_decay {weight_decay}; expected weight_decay >= 0")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _update(self, p, grad, group):
        lr, (beta1, beta2) = group["lr"], group["betas"]
        eps, weight_decay = group["eps"], group["weight_decay"]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros(p.shape, dtype=p.dtype, device=p.device)
            state["exp_avg_sq"] = zeros(p.shape, dtype=p.dtype, device=p.device)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros(p.shape, dtype=p.dtype, device=p.device)
        state["step"] += 1
        step = state["step"]
        amsgrad = group["amsgrad"]
        arrays = fused_arrays(p, grad, state["exp_avg"], state["exp_avg_sq"],
                              *((state["max_exp_avg_sq"],) if amsgrad else ()))
        if arrays is not None:  # one C++ pass on CPU float32/float64 arrays
            _cpu.adam_update(*arrays[:4], arrays[4] if amsgrad else None, lr, beta1, beta2, eps,
                             weight_decay, self.decoupled_weight_decay, step)
            return
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p.mul_(1 - lr * weight_decay)
            else:
                grad = grad + p * weight_decay
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.add_(grad - exp_avg, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        if group["amsgrad"]:
            max_exp_avg_sq = state["max_exp_avg_sq"]
            max_exp_avg_sq.copy_(max_exp_avg_sq.clamp(min=exp_avg_sq))
            exp_avg_sq = max_exp_avg_sq
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        p.addcdiv_(exp_avg, denom, value=-(lr / bias_correction1))


class AdamW(Adam):
    """AdamW as in ``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr * wd``."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
