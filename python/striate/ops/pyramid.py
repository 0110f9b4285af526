"""Gaussian pyramid steps: OpenCV's ``pyrDown`` / ``pyrUp`` and their adjoints.

Both filter each (n, c) plane with the 5x5 binomial kernel
[1 4 6 4 1]^T [1 4 6 4 1] / 256 and BORDER_REFLECT_101; pyr_up inserts
zeros before filtering and multiplies the kernel by 4.

On the GPU the backward passes are gathers over the transposed tap lists of
each axis (csrc/common/pyramid_plan.h), built on the host by
``striate._cuda`` and uploaded once per device and geometry (see
``_device_taps``).
"""
from __future__ import annotations

import collections

from .. import _backend, _cpu
from . import _check as check

# (device id, kind, n, m, vertical) -> (ptr, src, wt) CuPy arrays, least recently used first.
_DEVICE_TAPS = collections.OrderedDict()
_DEVICE_TAPS_MAX = 64


def _device_taps(like, kind, n, m=0, vertical=False):
    """Device pointers (ptr, src, wt) of the adjoint tap list of one axis, on like's GPU.

    The lists are uploaded on first use and synchronised, so any stream may read them
    afterwards; a list dropped from the cache is released only after its device is idle,
    so a kernel still reading it cannot see the memory reused.
    """
    cp = _backend.array_module(like)
    key = (like.device.id, kind, n, m, vertical)
    taps = _DEVICE_TAPS.get(key)
    if taps is None:
        cuda = _backend._cuda
        host = cuda.pyr_down_adjoint_taps(n) if kind == "down" else cuda.pyr_up_adjoint_taps(n, m, vertical)
        with like.device:
            taps = tuple(cp.asarray(a) for a in host)
            cp.cuda.get_current_stream().synchronize()
        _DEVICE_TAPS[key] = taps
        while len(_DEVICE_TAPS) > _DEVICE_TAPS_MAX:
            old_key, old = _DEVICE_TAPS.popitem(last=False)
            with cp.cuda.Device(old_key[0]):
                cp.cuda.runtime.deviceSynchronize()
            del old
    else:
        _DEVICE_TAPS.move_to_end(key)
    return tuple(a.data.ptr for a in taps)


def pyr_down(x, border="reflect101"):
    """Blur and halve: output ((H+1)//2, (W+1)//2), like ``cv2.pyrDown``."""
    op = "pyr_down"
    check.array(op, "x", x)
    check.choice(op, "border", border, ("reflect101",))
    N, C, H, W = x.shape
    y = check.empty(op, x, (N, C, _cpu.pyr_down_output_size(H), _cpu.pyr_down_output_size(W)))
    if _backend.is_cuda_array(x):
        _backend._cuda.pyr_down_forward(y.data.ptr, x.data.ptr, x.dtype.name, N * C, H, W,
                                        _backend.cuda_stream_ptr())
    else:
        _cpu.pyr_down_forward(y, x)
    return y


def pyr_down_backward(dy, x_shape):
    """Adjoint of :func:`pyr_down`."""
    op = "pyr_down_backward"
    check.array(op, "dy", dy)
    x_shape = check.shape4(op, "x_shape", x_shape)
    expected = x_shape[:2] + (_cpu.pyr_down_output_size(x_shape[2]), _cpu.pyr_down_output_size(x_shape[3]))
    if tuple(dy.shape) != expected:
        raise ValueError(f"{op}: dy must have shape {expected}, got {tuple(dy.shape)}")
    dx = check.empty(op, dy, x_shape)
    if _backend.is_cuda_array(dy):
        N, C, H, W = x_shape
        _backend._cuda.pyr_down_backward(dx.data.ptr, dy.data.ptr, dy.dtype.name, N * C, H, W,
                                         _device_taps(dy, "down", H), _device_taps(dy, "down", W),
                                         _backend.cuda_stream_ptr())
    else:
        _cpu.pyr_down_backward(dx, dy)
    return dx


def _up_size(op, H, W, output_size):
    if output_size is None:
        return 2 * H, 2 * W
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise ValueError(f"{op}: output_size must be (H_out, W_out), got {output_size!r}")
    size = tuple(check.integer(op, "output_size", v, 1) for v in output_size)
    for s, n in zip(size, (H, W)):
        if not _cpu.pyr_up_size_ok(n, s):  # cv2.pyrUp's rule: |out - 2n| == out % 2
            raise ValueError(f"{op}: output_size {size} must be 2x the input or one less/more (odd)")
    return size


def pyr_up(x, output_size=None):
    """Upsample by 2 and blur, like ``cv2.pyrUp``; output (2H, 2W) by default."""
    op = "pyr_up"
    check.array(op, "x", x)
    N, C, H, W = x.shape
    Ho, Wo = _up_size(op, H, W, output_size)
    y = check.empty(op, x, (N, C, Ho, Wo))
    if _backend.is_cuda_array(x):
        _backend._cuda.pyr_up_forward(y.data.ptr, x.data.ptr, x.dtype.name, N * C, H, W, Ho, Wo,
                                      _backend.cuda_stream_ptr())
    else:
        _cpu.pyr_up_forward(y, x)
    return y


def pyr_up_backward(dy, x_shape):
    """Adjoint of :func:`pyr_up` (dy has pyr_up's output shape)."""
    op = "pyr_up_backward"
    check.array(op, "dy", dy)
    x_shape = check.shape4(op, "x_shape", x_shape)
    if tuple(dy.shape[:2]) != x_shape[:2]:
        raise ValueError(f"{op}: dy's (N, C) {tuple(dy.shape[:2])} must match x_shape's {x_shape[:2]}")
    _up_size(op, x_shape[2], x_shape[3], tuple(dy.shape[2:]))
    dx = check.empty(op, dy, x_shape)
    if _backend.is_cuda_array(dy):
        N, C, H, W = x_shape
        Ho, Wo = dy.shape[2:]
        _backend._cuda.pyr_up_backward(dx.data.ptr, dy.data.ptr, dy.dtype.name, N * C, H, W, Ho, Wo,
                                       _device_taps(dy, "up", H, Ho, True),
                                       _device_taps(dy, "up", W, Wo, False),
                                       _backend.cuda_stream_ptr())
    else:
        _cpu.pyr_up_backward(dx, dy)
    return dx
