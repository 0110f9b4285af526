"""Backend loading and dispatch helpers.

``striate._cpu`` is always built. ``striate._cuda`` exists when the package
was built with nvcc; it imports without a GPU or driver (cudart is linked
statically) and reports ``device_count() == 0`` there. Only ``striate.ops``
uses this module to choose between them.
"""
from __future__ import annotations

import os

import numpy as np

# libgomp's idle threads spin GOMP_SPINCOUNT times (300,000 by default, about a
# millisecond) before they sleep. When another process competes for the cores,
# a spinning thread holds the core that the straggler of the next barrier
# needs: a BN-CNN training step at 2 threads ran 3x slower beside one busy
# process with the default and 2x with 10,000 spins, and no slower alone.
# libgomp reads the variable once, when it is loaded, so it is set only for
# that moment, and only when the user chose no wait policy. (A libgomp that
# another library loaded first keeps its own setting.)
_SPIN_DEFAULT = "10000"
_set_spin = "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
if _set_spin:
    os.environ["GOMP_SPINCOUNT"] = _SPIN_DEFAULT
try:
    from . import _cpu
finally:
    if _set_spin:
        del os.environ["GOMP_SPINCOUNT"]

try:  # the CUDA extension is optional
    from . import _cuda
except ImportError:  # built without nvcc
    _cuda = None

try:  # CuPy is optional too; without it there are no GPU arrays
    import cupy as _cupy
except Exception:  # pragma: no cover - depends on the machine
    _cupy = None


def cuda_built() -> bool:
    """True when the ``striate._cuda`` extension was compiled."""
    return _cuda is not None


def cuda_available() -> bool:
    """True when the CUDA backend is built, CuPy imports and a GPU is present."""
    return _cuda is not None and _cupy is not None and _cuda.device_count() > 0


def is_cuda_array(x) -> bool:
    return _cupy is not None and isinstance(x, _cupy.ndarray)


def array_module(x):
    """numpy for numpy arrays, cupy for cupy arrays."""
    return _cupy if is_cuda_array(x) else np


def to_device(array, device: str):
    """Copy an array to "cpu" (numpy) or "cuda" (cupy); no copy if already there."""
    if device == "cpu":
        return array.get() if is_cuda_array(array) else array
    if device == "cuda" or device.startswith("cuda:"):
        if not cuda_available():
            raise RuntimeError("to('cuda'): no usable GPU (striate.cuda.is_available() is False)")
        return array if is_cuda_array(array) else _cupy.asarray(array)
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def cupy_from_dlpack(obj):
    if _cupy is None:
        raise RuntimeError("from_dlpack: a CUDA array needs CuPy")
    return _cupy.from_dlpack(obj)


def cuda_stream_ptr() -> int:
    return _cupy.cuda.get_current_stream().ptr


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads used by the CPU kernels."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _cpu.set_num_threads(int(n))


def get_num_threads() -> int:
    """Number of OpenMP threads the CPU kernels use (OMP_NUM_THREADS by default)."""
    return _cpu.get_num_threads()


def _initial_threads() -> None:
    # OpenMP already reads OMP_NUM_THREADS; STRIATE_NUM_THREADS overrides it.
    value = os.environ.get("STRIATE_NUM_THREADS")
    if value:
        set_num_threads(int(value))


_initial_threads()
