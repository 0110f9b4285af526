"""Max unpooling (``torch.nn.functional.max_unpool2d``) and its backward.

Every index is validated before anything is written: an index outside the
output plane raises ``ValueError`` and leaves no partial result, on the CPU and
on the GPU (where a first kernel flags bad indices and y is written only after
the flag has been read back clear). When two inputs name the same cell the
later one (flat order) wins, on both devices.
"""
from __future__ import annotations

from .. import _backend, _cpu
from . import _check as check


def _output_size(op, x_shape, kernel_size, stride, padding, output_size):
    kernel = check.pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else check.pair(op, "stride", stride, 1)
    padding = check.pair(op, "padding", padding, 0)
    default = tuple(
        check.output_length(op, "output size", _cpu.unpool_output_size(
            x_shape[2 + i], kernel[i], stride[i], padding[i]))
        for i in range(2)
    )
    if output_size is None:
        size = default
    else:
        if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4):
            raise ValueError(f"{op}: output_size must be (H, W) or (N, C, H, W), got {output_size!r}")
        size = tuple(check.integer(op, "output_size", v, 1) for v in output_size[-2:])
        for i in range(2):
            if not default[i] - stride[i] < size[i] < default[i] + stride[i]:
                raise ValueError(
                    f"{op}: output_size {size} must be within one stride of the default {default}"
                )
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{op}: the output would be empty ({size[0]}x{size[1]})")
    return size


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Scatter each x value to its flat index in a zero output plane.

    Args:
        x: (N, C, H, W). indices: int64, same shape (as returned by max_pool2d).
        output_size: (H_out, W_out) or a full shape; default (H-1)*s - 2p + k.

    Returns:
        (N, C, H_out, W_out) array.
    """
    op = "max_unpool2d"
    check.array(op, "x", x)
    check.array(op, "indices", indices, dtype="int64")
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(f"{op}: indices must have the shape of x {tuple(x.shape)}, got {tuple(indices.shape)}")
    check.same_device(op, "x", x, "indices", indices)
    Ho, Wo = _output_size(op, x.shape, kernel_size, stride, padding, output_size)
    y = check.empty(op, x, (x.shape[0], x.shape[1], Ho, Wo))
    if _backend.is_cuda_array(x):
        _max_unpool2d_forward_cuda(op, y, x, indices)
    else:
        _cpu.max_unpool2d_forward(y, x, indices)
    return y


def _max_unpool2d_forward_cuda(op, y, x, indices):
    N, C, H, W = x.shape
    planes, in_plane, out_plane = N * C, H * W, y.shape[2] * y.shape[3]
    cuda, stream = _backend._cuda, _backend.cuda_stream_ptr()
    # The winners pass's workspace (which input writes each cell; its layout is private to
    # csrc/cuda/unpool2d.cu), int32 whenever it fits.
    winner_dtype = "int32" if in_plane < 2**31 else "int64"
    winner = check.empty(op, y, y.shape, dtype=winner_dtype)
    flag = check.index_flags(x)
    cuda.max_unpool2d_winners(winner.data.ptr, flag.data.ptr, indices.data.ptr, winner_dtype,
                              planes, in_plane, out_plane, stream)
    bad = int(flag.get()[0])
    if bad != check.NO_BAD_INDEX:
        check.raise_bad_index(op, indices, bad, "output", out_plane)
    cuda.max_unpool2d_forward(y.data.ptr, x.data.ptr, winner.data.ptr, x.dtype.name, winner_dtype,
                              planes, in_plane, out_plane, stream)


def max_unpool2d_backward(dy, indices):
    """Gradient of :func:`max_unpool2d`: dy gathered at ``indices``."""
    op = "max_unpool2d_backward"
    check.array(op, "dy", dy)
    check.array(op, "indices", indices, dtype="int64")
    if tuple(indices.shape[:2]) != tuple(dy.shape[:2]):
        raise ValueError(f"{op}: indices' (N, C) {tuple(indices.shape[:2])} must match dy's {tuple(dy.shape[:2])}")
    check.same_device(op, "dy", dy, "indices", indices)
    dx = check.empty(op, dy, indices.shape)
    if _backend.is_cuda_array(dy):
        N, C, H, W = indices.shape
        out_plane = dy.shape[2] * dy.shape[3]
        flag = check.index_flags(dy)
        _backend._cuda.max_unpool2d_backward(dx.data.ptr, flag.data.ptr, dy.data.ptr,
                                             indices.data.ptr, dy.dtype.name, N * C, H * W,
                                             out_plane, _backend.cuda_stream_ptr())
        bad = int(flag.get()[0])
        if bad != check.NO_BAD_INDEX:
            check.raise_bad_index(op, indices, bad, "output", out_plane)
    else:
        _cpu.max_unpool2d_backward(dx, dy, indices)
    return dx
