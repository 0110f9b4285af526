"""Numerical gradient check in float64 (central differences)."""
from __future__ import annotations

import numpy as np


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True) -> bool:
    """Compare autograd's gradients of ``fn`` with central differences.

    Args:
        fn: function of Tensors returning a Tensor (or a tuple; all outputs are checked).
        inputs: a Tensor or a tuple of them; those with requires_grad are checked.
            Use float64 tensors.
        eps, atol, rtol: step and tolerances, as in ``torch.autograd.gradcheck``.

    Returns:
        True when every analytical gradient matches; otherwise raises
        ``AssertionError`` naming the input and the worst element (or returns
        False with ``raise_exception=False``).
    """
    from ..autograd.grad_mode import no_grad
    from ..tensor import Tensor

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} must be float64, got {t.dtype}")

    def outputs():
        out = fn(*inputs)
        return out if isinstance(out, tuple) else (out,)

    probe = outputs()
    rng = np.random.default_rng(0)
    # Random output weights make one backward pass check every output at once.
    weights = [rng.standard_normal(o.shape) for o in probe]

    def scalar():
        with no_grad():
            return sum(float((o.numpy() * w).sum()) for o, w in zip(outputs(), weights))

    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    outs = outputs()
    total = None
    for o, w in zip(outs, weights):
        if not o.requires_grad:
            continue
        term = (o * Tensor(w.astype(o.dtype)).to(o.device)).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()

    for i, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytical = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        numerical = np.zeros(t.shape)
        flat = t.data.reshape(-1)
        for k in range(flat.size):
            keep = flat[k].item()
            flat[k] = keep + eps
            plus = scalar()
            flat[k] = keep - eps
            minus = scalar()
            flat[k] = keep
            numerical.reshape(-1)[k] = (plus - minus) / (2 * eps)
        err = np.abs(analytical - numerical)
        bad = err > atol + rtol * np.abs(numerical)
        if bad.any():
            k = int(np.argmax(np.where(bad, err, -1)))
            msg = (f"gradcheck: input {i}, element {np.unravel_index(k, t.shape)}: analytical "
                   f"{analytical.reshape(-1)[k]:.6g} vs numerical {numerical.reshape(-1)[k]:.6g}")
            if raise_exception:
                raise AssertionError(msg)
            return False
    return True
