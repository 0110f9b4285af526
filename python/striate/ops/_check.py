"""Argument validation shared by the ``striate.ops`` functions.

Every error names the op, the argument and what was expected, e.g.
``max_pool2d: padding (3) must be at most half the kernel size (2)``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .._backend import is_cuda_array

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def array(op: str, name: str, x, ndim: int | None = 4, dtype=None, allow_empty: bool = False):
    """Check that x is a C-contiguous float32/float64 numpy or cupy array."""
    if not (isinstance(x, np.ndarray) or is_cuda_array(x)):
        raise TypeError(f"{op}: {name} must be a numpy or cupy array, got {type(x).__name__}")
    if dtype is None:
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} must have dtype float32 or float64, got {x.dtype}")
    elif x.dtype != np.dtype(dtype):
        raise TypeError(f"{op}: {name} must have dtype {np.dtype(dtype)}, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        layout = " (N, C, H, W)" if ndim == 4 else ""
        raise ValueError(f"{op}: {name} must be {ndim}-D{layout}, got shape {tuple(x.shape)}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (use numpy.ascontiguousarray)")
    if x.size == 0 and not allow_empty:
        raise ValueError(f"{op}: {name} must not be empty, got shape {tuple(x.shape)}")
    return x


def same_kind(op: str, ref_name: str, ref, name: str, x) -> None:
    """x must live on the same device and have the same dtype as ref."""
    if is_cuda_array(ref) != is_cuda_array(x):
        raise TypeError(f"{op}: {name} and {ref_name} must be on the same device")
    if x.dtype != ref.dtype:
        raise TypeError(f"{op}: {name} must have the dtype of {ref_name} ({ref.dtype}), got {x.dtype}")


def integer(op: str, name: str, v, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return v


def pair(op: str, name: str, v, minimum: int | None = None) -> tuple[int, int]:
    """An int or a pair of ints, as a pair."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return (integer(op, name, v[0], minimum), integer(op, name, v[1], minimum))
    v = integer(op, name, v, minimum)
    return (v, v)


def shape4(op: str, name: str, s) -> tuple[int, int, int, int]:
    if not isinstance(s, (tuple, list)) or len(s) != 4:
        raise ValueError(f"{op}: {name} must be a 4-tuple (N, C, H, W), got {s!r}")
    s = tuple(integer(op, name, v, 1) for v in s)
    return s


def needs(op: str, v) -> tuple[bool, bool, bool]:
    """Which of (dx, dw, db) a backward should compute."""
    if not isinstance(v, (tuple, list)) or len(v) != 3:
        raise ValueError(f"{op}: needs must be a triple of bools (dx, dw, db), got {v!r}")
    return tuple(bool(n) for n in v)


def choice(op: str, name: str, v, options) -> str:
    if v not in options:
        raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, options))}, got {v!r}")
    return v


def probability(op: str, name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{op}: {name} must be a float in [0, 1], got {p!r}")
    p = float(p)
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"{op}: {name} must be in [0, 1], got {p}")
    return p


def empty(like, shape, dtype=None):
    """Allocate on like's device (numpy.empty or cupy.empty)."""
    from .._backend import array_module

    return array_module(like).empty(shape, dtype=like.dtype if dtype is None else dtype)


def cpu_only(op: str, *arrays) -> None:
    """Refuse GPU arrays for an op whose CUDA kernel is not built yet."""
    if any(is_cuda_array(a) for a in arrays):
        raise NotImplementedError(
            f"{op}: the CUDA kernel for this op is not implemented yet; pass numpy arrays"
        )


def same_device(op: str, ref_name: str, ref, name: str, x) -> None:
    """x must live on the same device as ref (numpy with numpy, cupy with cupy)."""
    if is_cuda_array(ref) != is_cuda_array(x):
        raise TypeError(f"{op}: {name} and {ref_name} must be on the same device")


# The "no bad index" value of the int64 flags that CUDA kernels lower to the
# first flat position holding a bad index (csrc/cuda/index_flag.cuh).
NO_BAD_INDEX = 2**63 - 1


def index_flags(like, count: int = 1):
    """``count`` device int64 flags set to NO_BAD_INDEX, on like's device (CuPy)."""
    from .._backend import array_module

    return array_module(like).full(count, NO_BAD_INDEX, dtype="int64")


def raise_bad_index(op: str, indices, position: int, plane: str, limit: int) -> None:
    """The ValueError for indices.flat[position] outside ``[0, limit)`` (as the CPU kernels word it)."""
    value = int(indices.reshape(-1)[position])
    raise ValueError(f"{op}: indices.flat[{position}] = {value} is outside the {plane} plane "
                     f"[0, {limit})")
