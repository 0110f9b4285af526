"""Argument validation shared by the ``striate.ops`` functions.

Every error names the op, the argument and what was expected, e.g.
``max_pool2d: padding (3) must be at most half the kernel size (2)``.

Geometry integers (kernel sizes, strides, paddings, dilations, groups,
output sizes) are at most ``MAX_GEOMETRY`` (2**31 - 1, the C++ bindings'
``kMaxGeometryArgument``), and every output is checked against the memory of
its device before it is allocated (:func:`empty`), so a huge argument is an
error in closed form, never a long loop, a wrapped size or a bare numpy
message.
"""
from __future__ import annotations

import functools
import math
import numbers
import os

import numpy as np

from .._backend import is_cuda_array

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# The largest kernel size, stride, padding, dilation, group count or output length accepted:
# 2**31 - 1, PyTorch's bound for these int arguments (csrc/common/shape.h: kMaxGeometryArgument).
MAX_GEOMETRY = 2**31 - 1
# The largest length of one declared dimension (x_shape, output_size of a full shape).
MAX_DIMENSION = 2**62


class ArraySizeError(ValueError, MemoryError):
    """An output or workspace larger than its device's memory (or than int64 can count).

    A ``ValueError`` (the arguments ask for it) and a ``MemoryError`` (what numpy and
    PyTorch raise for a failed allocation), so code catching either sees it.
    """


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


def integer(op: str, name: str, v, minimum: int | None = None,
            maximum: int | None = MAX_GEOMETRY) -> int:
    """An int (not a bool) in [minimum, maximum]; numpy integers are accepted."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    v = int(v)
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{op}: {name} must be at most {maximum}, got {v}")
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
    """A declared (N, C, H, W) shape of positive ints; its size is checked by :func:`empty`."""
    if not isinstance(s, (tuple, list)) or len(s) != 4:
        raise ValueError(f"{op}: {name} must be a 4-tuple (N, C, H, W), got {s!r}")
    return tuple(integer(op, name, v, 1, MAX_DIMENSION) for v in s)


def output_length(op: str, name: str, n: int) -> int:
    """A length from a shape.h formula: its overflow answer (-1) becomes an error."""
    if n < 0:
        raise ArraySizeError(f"{op}: the {name} overflows int64 (the arguments are too large)")
    return n


def needs(op: str, v) -> tuple[bool, bool, bool]:
    """Which of (dx, dw, db) a backward should compute."""
    if not isinstance(v, (tuple, list)) or len(v) != 3:
        raise ValueError(f"{op}: needs must be a triple of bools (dx, dw, db), got {v!r}")
    return tuple(boolean(op, "needs", n) for n in v)


def boolean(op: str, name: str, v) -> bool:
    """A bool (numpy's bool too); anything else is a TypeError, not a silent truth test."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be a bool, got {v!r}")
    return bool(v)


def real(op: str, name: str, v) -> float:
    """A real number (int or float, numpy's too; NaN and infinities allowed)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}")
    return float(v)


def choice(op: str, name: str, v, options) -> str:
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"{op}: {name} must be one of {', '.join(map(repr, options))}, got {v!r}")
    return v


def probability(op: str, name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{op}: {name} must be a float in [0, 1], got {p!r}")
    p = float(p)
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"{op}: {name} must be in [0, 1], got {p}")
    return p


@functools.lru_cache(maxsize=None)
def _host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # no sysconf: only int64 bounds the size
        return 2**63 - 1


@functools.lru_cache(maxsize=None)
def _gpu_memory_bytes(device_id: int) -> int:
    """Total memory of one GPU, asked once (every allocation checks against it)."""
    import cupy

    with cupy.cuda.Device(device_id):
        return int(cupy.cuda.runtime.memGetInfo()[1])


def _device_memory_bytes(like) -> int:
    return _gpu_memory_bytes(like.device.id) if is_cuda_array(like) else _host_memory_bytes()


def _size_text(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def fits_in_memory(op: str, like, what: str, nbytes: int) -> None:
    """Raise ArraySizeError when ``nbytes`` exceed the memory of like's device."""
    limit = _device_memory_bytes(like)
    if nbytes > limit:
        raise ArraySizeError(f"{op}: {what} would need {_size_text(nbytes)}, more than the "
                             f"{_size_text(limit)} of memory of its device")


class allocation:
    """Context: a MemoryError from an allocator or a kernel's scratch becomes ArraySizeError
    naming ``op`` (numpy's, CuPy's and pybind's out-of-memory errors all derive from it)."""

    def __init__(self, op: str, what: str):
        self.op, self.what = op, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, MemoryError) and not isinstance(exc, ArraySizeError):
            raise ArraySizeError(f"{self.op}: cannot allocate {self.what}: {exc}") from exc
        return False


def empty(op: str, like, shape, dtype=None):
    """Allocate on like's device (numpy.empty or cupy.empty), after checking the size.

    Raises:
        ArraySizeError: the array would hold more bytes than its device's memory, or the
            allocator refused it; the message names ``op``.
    """
    dtype = np.dtype(like.dtype if dtype is None else dtype)
    shape = tuple(int(n) for n in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > _device_memory_bytes(like):  # the message is only built for an error
        fits_in_memory(op, like, f"the output {shape} ({dtype})", nbytes)
    try:
        if isinstance(like, np.ndarray):
            return np.empty(shape, dtype=dtype)
        from .._backend import array_module

        return array_module(like).empty(shape, dtype=dtype)
    except MemoryError as exc:
        raise ArraySizeError(f"{op}: cannot allocate the output {shape} ({dtype}): {exc}") from exc


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
