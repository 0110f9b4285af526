"""ReLU and leaky ReLU (csrc/cpu/activation.cpp), forward and backward.

One pass each way, and the backward reads one saved array instead of a stored
mask: ReLU's gradient is ``dy`` where its *output* is positive, leaky ReLU's
is ``dy`` where its *input* is positive and ``dy * negative_slope`` elsewhere
(also at 0, as in PyTorch). NaN inputs stay NaN going forward. Arrays of any
shape, float32 or float64, C-contiguous; CuPy arrays are computed with CuPy's
element-wise operations.
"""
from __future__ import annotations

from .. import _cpu
from .._backend import array_module, is_cuda_array
from . import _check as check


def _pair(op, a_name, a, b_name, b):
    check.array(op, a_name, a, ndim=None, allow_empty=True)
    check.array(op, b_name, b, ndim=None, allow_empty=True)
    check.same_kind(op, a_name, a, b_name, b)
    if a.shape != b.shape:
        raise ValueError(f"{op}: {b_name} must have the shape of {a_name} {tuple(a.shape)}, "
                         f"got {tuple(b.shape)}")


def relu(x):
    """``max(x, 0)`` element-wise (NaN propagates)."""
    op = "relu"
    check.array(op, "x", x, ndim=None, allow_empty=True)
    if is_cuda_array(x):
        return array_module(x).maximum(x, 0)
    y = check.empty(op, x, x.shape)
    if y.size:
        _cpu.relu_forward(y, x)
    return y


def relu_backward(dy, y):
    """Gradient of :func:`relu` from its output y: ``dy`` where ``y > 0``, else 0."""
    op = "relu_backward"
    _pair(op, "dy", dy, "y", y)
    if is_cuda_array(dy):
        return dy * (y > 0)
    dx = check.empty(op, dy, dy.shape)
    if dx.size:
        _cpu.relu_backward(dx, dy, y)
    return dx


def leaky_relu(x, negative_slope=0.01):
    """``x`` where ``x > 0``, else ``x * negative_slope``."""
    op = "leaky_relu"
    check.array(op, "x", x, ndim=None, allow_empty=True)
    slope = check.real(op, "negative_slope", negative_slope)
    if is_cuda_array(x):
        return x * array_module(x).where(x > 0, 1, slope).astype(x.dtype)
    y = check.empty(op, x, x.shape)
    if y.size:
        _cpu.leaky_relu_forward(y, x, slope)
    return y


def leaky_relu_backward(dy, x, negative_slope=0.01):
    """Gradient of :func:`leaky_relu` from its input x: ``dy`` where ``x > 0``, else ``dy * slope``."""
    op = "leaky_relu_backward"
    _pair(op, "dy", dy, "x", x)
    slope = check.real(op, "negative_slope", negative_slope)
    if is_cuda_array(dy):
        return dy * array_module(dy).where(x > 0, 1, slope).astype(dy.dtype)
    dx = check.empty(op, dy, dy.shape)
    if dx.size:
        _cpu.leaky_relu_backward(dx, dy, x, slope)
    return dx
