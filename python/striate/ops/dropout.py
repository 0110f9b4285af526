"""Inverted dropout with a counter-based Philox4x32-10 mask.

The keep decision for element i is a pure function of (seed, offset, i)
(see csrc/common/philox.h), identical on the CPU and the GPU and independent
of the thread count. Kept elements are scaled by 1/(1-p).
"""
from __future__ import annotations

import numbers

from .. import _backend, _cpu
from . import _check as check


def _u64(op, name, v):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if not 0 <= int(v) < 2**64:
        raise ValueError(f"{op}: {name} must be in [0, 2**64), got {v}")
    return int(v)


def dropout(x, p, seed, offset=0):
    """Zero each element with probability p and scale the rest by 1/(1-p).

    Args:
        x: float32/float64 array of any shape.
        p: drop probability in [0, 1]. seed, offset: the Philox key and stream.

    Returns:
        (y, mask): mask is uint8 (1 = kept). p == 0 copies, p == 1 gives zeros.
    """
    op = "dropout"
    check.array(op, "x", x, ndim=None)
    p = check.probability(op, "p", p)
    seed = _u64(op, "seed", seed)
    offset = _u64(op, "offset", offset)
    xp = _backend.array_module(x)
    if p == 0.0:
        return x.copy(), xp.ones(x.shape, dtype="uint8")
    if p == 1.0:
        return xp.zeros_like(x), xp.zeros(x.shape, dtype="uint8")
    y = check.empty(op, x, x.shape)
    mask = check.empty(op, x, x.shape, dtype="uint8")
    scale = 1.0 / (1.0 - p)
    if _backend.is_cuda_array(x):
        _backend._cuda.dropout_forward(y.data.ptr, mask.data.ptr, x.data.ptr, x.size, x.dtype.name,
                                       seed, offset, p, scale, _backend.cuda_stream_ptr())
    else:
        _cpu.dropout_forward(y, mask, x, seed, offset, p, scale)
    return y, mask


def dropout_backward(dy, mask, p):
    """Gradient of :func:`dropout`: ``dy * mask / (1 - p)`` (zeros when p == 1)."""
    op = "dropout_backward"
    check.array(op, "dy", dy, ndim=None)
    check.array(op, "mask", mask, ndim=None, dtype="uint8")
    p = check.probability(op, "p", p)
    if tuple(mask.shape) != tuple(dy.shape):
        raise ValueError(f"{op}: mask must have the shape of dy {tuple(dy.shape)}, got {tuple(mask.shape)}")
    if _backend.is_cuda_array(dy) != _backend.is_cuda_array(mask):
        raise TypeError(f"{op}: dy and mask must be on the same device")
    if p == 1.0:
        return _backend.array_module(dy).zeros_like(dy)
    dx = check.empty(op, dy, dy.shape)
    scale = 1.0 / (1.0 - p)
    if _backend.is_cuda_array(dy):
        _backend._cuda.dropout_backward(dx.data.ptr, dy.data.ptr, mask.data.ptr, dy.size,
                                        dy.dtype.name, scale, _backend.cuda_stream_ptr())
    else:
        _cpu.dropout_backward(dx, dy, mask, scale)
    return dx


def philox4x32_10(counter, key):
    """The raw Philox4x32-10 block function (4 words of counter, 2 of key)."""
    return _cpu.philox4x32_10(tuple(counter), tuple(key))
