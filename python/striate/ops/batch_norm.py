"""Training-mode batch normalisation (csrc/cpu/batch_norm.cpp), forward and backward.

x is (N, C) or (N, C, ...): each channel (axis 1) is normalised with its batch
mean and biased variance, as in ``torch.nn.functional.batch_norm(training=True)``.
The CPU kernels take one pass over x for the statistics and one to write y
(the backward: one for the channel sums, one for dx), without the
full-size temporaries of an array-module formula. CuPy arrays are computed
with CuPy's own element-wise operations (there is no striate CUDA kernel for
this op yet).
"""
from __future__ import annotations

from .. import _cpu
from .._backend import array_module, is_cuda_array
from . import _check as check


def _channels(op, x, name, arr):
    if arr is None:
        return None
    check.array(op, name, arr, ndim=1)
    check.same_kind(op, "x", x, name, arr)
    if arr.shape != (x.shape[1],):
        raise ValueError(f"{op}: {name} must have shape ({x.shape[1]},), got {tuple(arr.shape)}")
    return arr


def _input(op, x):
    check.array(op, "x", x, ndim=None)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must be (N, C) or (N, C, ...), got shape {tuple(x.shape)}")
    return x


def batch_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalise x per channel with its batch statistics, then scale and shift.

    Args:
        x: C-contiguous float32/float64 (N, C, ...) with more than one value per channel.
        weight, bias: (C,) arrays of x's dtype, or None.
        eps: added to the biased variance, >= 0.

    Returns:
        (y, mean, var, invstd): y like x; the (C,) batch mean, *unbiased* variance (for the
        running statistics) and 1 / sqrt(biased variance + eps) (for the backward).
    """
    op = "batch_norm"
    _input(op, x)
    weight, bias = _channels(op, x, "weight", weight), _channels(op, x, "bias", bias)
    eps = check.real(op, "eps", eps)
    if not eps >= 0:
        raise ValueError(f"{op}: eps must be >= 0, got {eps}")
    count = x.size // x.shape[1]
    if count < 2:
        raise ValueError(f"{op}: training needs more than 1 value per channel, got x of shape "
                         f"{tuple(x.shape)}")
    if is_cuda_array(x):
        return _batch_norm_xp(x, weight, bias, eps)
    C = x.shape[1]
    y = check.empty(op, x, x.shape)
    mean, var, invstd = (check.empty(op, x, (C,)) for _ in range(3))
    _cpu.batch_norm_forward(y, mean, var, invstd, x, weight, bias, eps)
    return y, mean, var, invstd


def batch_norm_backward(dy, x, weight, mean, invstd, needs=(True, True, True)):
    """Gradients of :func:`batch_norm` for upstream dy.

    Args:
        dy, x: arrays of the same shape and dtype. weight: (C,) or None.
        mean, invstd: the forward's (C,) outputs. needs: which of (dx, dweight, dbias) to compute.

    Returns:
        (dx, dweight, dbias), None where not needed (dweight is None without a weight).
    """
    op = "batch_norm_backward"
    _input(op, x)
    check.array(op, "dy", dy, ndim=None)
    check.same_kind(op, "x", x, "dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy must have the shape of x {tuple(x.shape)}, got {tuple(dy.shape)}")
    weight = _channels(op, x, "weight", weight)
    mean, invstd = _channels(op, x, "mean", mean), _channels(op, x, "invstd", invstd)
    if mean is None or invstd is None:
        raise TypeError(f"{op}: mean and invstd are required (the forward's outputs)")
    need_x, need_w, need_b = check.needs(op, needs)
    need_w = need_w and weight is not None
    if is_cuda_array(x):
        return _batch_norm_backward_xp(dy, x, weight, mean, invstd, need_x, need_w, need_b)
    C = x.shape[1]
    dx = check.empty(op, x, x.shape) if need_x else None
    dw = check.empty(op, x, (C,)) if need_w else None
    db = check.empty(op, x, (C,)) if need_b else None
    if need_x or need_w or need_b:
        _cpu.batch_norm_backward(dx, dw, db, dy, x, weight, mean, invstd)
    return dx, dw, db


# --- CuPy: the same formulas with the array module's element-wise operations.

def _batch_norm_xp(x, weight, bias, eps):
    xp = array_module(x)
    axes, cshape = (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)
    count = x.size // x.shape[1]
    mean = x.mean(axis=axes)
    centered = x - mean.reshape(cshape)
    var = (centered * centered).mean(axis=axes)
    invstd = 1 / xp.sqrt(var + eps)
    y = centered * invstd.reshape(cshape)
    if weight is not None:
        y = y * weight.reshape(cshape)
    if bias is not None:
        y = y + bias.reshape(cshape)
    return y, mean, var * (count / (count - 1)), invstd.astype(x.dtype)


def _batch_norm_backward_xp(dy, x, weight, mean, invstd, need_x, need_w, need_b):
    axes, cshape = (0,) + tuple(range(2, x.ndim)), (1, x.shape[1]) + (1,) * (x.ndim - 2)
    xhat = (x - mean.reshape(cshape)) * invstd.reshape(cshape)
    dw = (dy * xhat).sum(axis=axes) if need_w else None
    db = dy.sum(axis=axes) if need_b else None
    dx = None
    if need_x:
        gh = dy if weight is None else dy * weight.reshape(cshape)
        dx = invstd.reshape(cshape) * (gh - gh.mean(axis=axes, keepdims=True)
                                       - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
    return dx, dw, db
