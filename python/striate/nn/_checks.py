"""Argument checks of ``striate.nn.functional`` (errors name the function and the argument)."""
from __future__ import annotations

import numbers

from ..tensor import Tensor


def _tensor(op, name, t, ndim=None, floating=True, optional=False):
    """t must be a Tensor (or None when optional), of ndim dims and a float dtype when asked."""
    if t is None and optional:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a striate.Tensor, got {type(t).__name__}")
    if floating and t.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must have a floating-point dtype, got {t.dtype}")
    if ndim is not None and t.ndim != ndim:
        layout = " (N, C, H, W)" if ndim == 4 else ""
        raise ValueError(f"{op}: {name} must be {ndim}-D{layout}, got shape {t.shape}")
    return t


def _number(op, name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {v!r}")
    if lo is not None and hi is not None and not lo <= v <= hi:
        raise ValueError(f"{op}: {name} must be in [{lo}, {hi}], got {v}")
    if lo is not None and v < lo:
        raise ValueError(f"{op}: {name} must be >= {lo}, got {v}")
    return float(v)


def _int(op, name, v, minimum=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return int(v)


def _bool(op, name, v):
    if not isinstance(v, bool):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return v


def _dim(op, t, dim):
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not -t.ndim <= dim < t.ndim:
        raise ValueError(f"{op}: dim ({dim}) is out of range for a {t.ndim}-D input")
    return int(dim) % t.ndim


def _stride(stride):
    """torch's pooling default: no stride (or an empty one) means stride = kernel_size."""
    return None if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else stride
