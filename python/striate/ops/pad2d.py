"""2-D padding: ``pad2d`` and its adjoint ``pad2d_backward`` (numpy or cupy arrays)."""
from __future__ import annotations

from .. import _backend, _cpu
from . import _check as check

PAD_MODES = {"constant": 0, "reflect": 1, "replicate": 2, "circular": 3}


def _pad4(op: str, pad) -> tuple[int, int, int, int]:
    if not isinstance(pad, (tuple, list)) or len(pad) != 4:
        raise ValueError(f"{op}: pad must be (left, right, top, bottom), got {pad!r}")
    return tuple(check.integer(op, "pad", v, 0) for v in pad)


def _check_pad_limits(op: str, shape, pad, mode: str) -> None:
    H, W = shape[2], shape[3]
    left, right, top, bottom = pad
    for amount, size, side in ((left, W, "left"), (right, W, "right"), (top, H, "top"), (bottom, H, "bottom")):
        if mode == "reflect" and amount >= size:
            raise ValueError(
                f"{op}: reflect padding ({side} = {amount}) must be smaller than the input "
                f"dimension ({size})"
            )
        if mode == "circular" and amount > size:
            raise ValueError(
                f"{op}: circular padding ({side} = {amount}) must be at most the input "
                f"dimension ({size})"
            )


def pad2d(x, pad, mode: str = "constant", value: float = 0.0):
    """Pad each (n, c) plane of an NCHW array, like ``torch.nn.functional.pad``.

    Args:
        x: (N, C, H, W) float32/float64 array.
        pad: (left, right, top, bottom), non-negative ints.
        mode: "constant", "reflect" (no edge repeat), "replicate" or "circular".
        value: fill value for "constant".

    Returns:
        (N, C, H + top + bottom, W + left + right) array.
    """
    op = "pad2d"
    check.array(op, "x", x)
    check.choice(op, "mode", mode, tuple(PAD_MODES))
    pad = _pad4(op, pad)
    _check_pad_limits(op, x.shape, pad, mode)
    value = check.real(op, "value", value)
    N, C, H, W = x.shape
    y = check.empty(op, x, (N, C, H + pad[2] + pad[3], W + pad[0] + pad[1]))
    if _backend.is_cuda_array(x):
        _backend._cuda.pad2d_forward(y.data.ptr, x.data.ptr, x.dtype.name, N * C, H, W, *pad,
                                     PAD_MODES[mode], value, _backend.cuda_stream_ptr())
    else:
        _cpu.pad2d_forward(y, x, pad[0], pad[1], pad[2], pad[3], PAD_MODES[mode], value)
    return y


def pad2d_backward(dy, x_shape, pad, mode: str = "constant"):
    """Adjoint of :func:`pad2d`: sums every padded cell back onto its source.

    Returns:
        dx with shape ``x_shape``.
    """
    op = "pad2d_backward"
    check.array(op, "dy", dy)
    x_shape = check.shape4(op, "x_shape", x_shape)
    check.choice(op, "mode", mode, tuple(PAD_MODES))
    pad = _pad4(op, pad)
    _check_pad_limits(op, x_shape, pad, mode)
    expected = (x_shape[0], x_shape[1], x_shape[2] + pad[2] + pad[3], x_shape[3] + pad[0] + pad[1])
    if tuple(dy.shape) != expected:
        raise ValueError(f"{op}: dy must have shape {expected}, got {tuple(dy.shape)}")
    dx = check.empty(op, dy, x_shape)
    if _backend.is_cuda_array(dy):
        N, C, H, W = x_shape
        _backend._cuda.pad2d_backward(dx.data.ptr, dy.data.ptr, dy.dtype.name, N * C, H, W, *pad,
                                      PAD_MODES[mode], _backend.cuda_stream_ptr())
    else:
        _cpu.pad2d_backward(dx, dy, pad[0], pad[1], pad[2], pad[3], PAD_MODES[mode])
    return dx
