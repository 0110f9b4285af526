"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

The update is torch.optim.SGD's (single-tensor path), step by step::

    g = grad + weight_decay * p                      (if weight_decay)
    buf = g (first step, a copy);  buf = momentum * buf + (1 - dampening) * g
    g = g + momentum * buf (nesterov)  or  g = buf   (if momentum)
    p = p - lr * g
"""
from __future__ import annotations

from .. import _cpu
from ..tensor import zeros
from .optimizer import Optimizer, fused_arrays, required


class SGD(Optimizer):
    """SGD as in ``torch.optim.SGD``.

    Args:
        params: Tensors or parameter groups (dicts).
        lr: learning rate.
        momentum: momentum factor (0 disables the buffer).
        dampening: dampening of the gradient added to the momentum buffer.
        weight_decay: L2 penalty, added to the gradient.
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening == 0).
    """

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if lr is not required and lr < 0.0:
            raise ValueError(f"SGD: invalid learning rate {lr}; expected lr >= 0")
        if momentum < 0.0:
            raise ValueError(f"SGD: invalid momentum {momentum}; expected momentum >= 0")
        if weight_decay < 0.0:
            raise ValueError(f"SGD: invalid weight_decay {weight_decay}; expected weight_decay >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening == 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, p, grad, group):
        momentum = group["momentum"]
        if self._fused_update(p, grad, group):
            return
        if group["weight_decay"] != 0:
            grad = grad + p * group["weight_decay"]
        if momentum != 0:  # without momentum SGD keeps no state, like torch
            buf = self.state[p].get("momentum_buffer")
            if buf is None:
                buf = self.state[p]["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - group["dampening"])
            grad = grad + buf * momentum if group["nesterov"] else buf
        p.add_(grad, alpha=-group["lr"])

    def _fused_update(self, p, grad, group):
        """The update in one C++ pass on CPU float32/float64 arrays; False where it cannot run."""
        arrays = fused_arrays(p, grad)
        if arrays is None:
            return False
        buf, first = None, False
        if group["momentum"] != 0:
            buf = self.state[p].get("momentum_buffer")
            first = buf is None
            if first:  # contiguous, p's dtype: the first step writes it whole
                buf = self.state[p]["momentum_buffer"] = zeros(p.shape, dtype=p.dtype, device=p.device)
            elif fused_arrays(p, buf) is None:
                return False
        _cpu.sgd_update(arrays[0], arrays[1], None if buf is None else buf.data, group["lr"],
                        group["momentum"], group["dampening"], group["weight_decay"],
                        group["nesterov"], first)
        return True
