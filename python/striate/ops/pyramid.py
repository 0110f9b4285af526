"""Gaussian pyramid steps: OpenCV's ``pyrDown`` / ``pyrUp`` and their adjoints.

Both filter each (n, c) plane with the 5x5 binomial kernel
[1 4 6 4 1]^T [1 4 6 4 1] / 256 and BORDER_REFLECT_101; pyr_up inserts
zeros before filtering and multiplies the kernel by 4.
"""
from __future__ import annotations

from .. import _cpu
from . import _check as check


def pyr_down(x, border="reflect101"):
    """Blur and halve: output ((H+1)//2, (W+1)//2), like ``cv2.pyrDown``."""
    op = "pyr_down"
    check.array(op, "x", x)
    check.choice(op, "border", border, ("reflect101",))
    check.cpu_only(op, x)
    N, C, H, W = x.shape
    y = check.empty(x, (N, C, _cpu.pyr_down_output_size(H), _cpu.pyr_down_output_size(W)))
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
    check.cpu_only(op, dy)
    dx = check.empty(dy, x_shape)
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
    check.cpu_only(op, x)
    y = check.empty(x, (N, C, Ho, Wo))
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
    check.cpu_only(op, dy)
    dx = check.empty(dy, x_shape)
    _cpu.pyr_up_backward(dx, dy)
    return dx
