"""Max, average and sum pooling with their backward passes.

Semantics of ``torch.nn.functional.max_pool2d(..., return_indices=True)`` and
``avg_pool2d``: PyTorch's output-size rule (ceil_mode never starts a window
in the right padding), padding at most half the kernel, flat int64 argmax
indices h*W + w per (n, c) plane, ties to the first cell in row-major
window order, NaN propagates. ``sum_pool2d`` is ``avg_pool2d`` with
``divisor_override=1``. numpy arrays run the CPU kernels, cupy arrays the
CUDA ones (csrc/cuda/pool2d.cu); both give the same results.
"""
from __future__ import annotations

from .. import _backend, _cpu
from . import _check as check


class _Pool:
    """Validated pooling geometry (shared by every pooling op)."""

    def __init__(self, op, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
        self.ceil_mode = ceil_mode = check.boolean(op, "ceil_mode", ceil_mode)
        self.kernel = check.pair(op, "kernel_size", kernel_size, 1)
        self.stride = self.kernel if stride is None else check.pair(op, "stride", stride, 1)
        self.padding = check.pair(op, "padding", padding, 0)
        self.dilation = check.pair(op, "dilation", dilation, 1)
        for p, k in zip(self.padding, self.kernel):
            if p > k // 2:
                raise ValueError(f"{op}: padding ({p}) must be at most half the kernel size ({k})")
        H, W = x_shape[2], x_shape[3]
        self.Ho, self.Wo = (
            check.output_length(op, "output size", _cpu.pool_output_size(
                n, self.kernel[i], self.stride[i], self.padding[i], self.dilation[i], ceil_mode))
            for i, n in enumerate((H, W)))
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(
                f"{op}: the output would be empty ({self.Ho}x{self.Wo}) for input {H}x{W}, "
                f"kernel {self.kernel}, stride {self.stride}, padding {self.padding}, "
                f"dilation {self.dilation}"
            )
        for i, (n, o) in enumerate(((H, self.Ho), (W, self.Wo))):
            if not _cpu.pool_windows_nonempty(n, o, self.kernel[i], self.stride[i],
                                              self.padding[i], self.dilation[i]):
                raise ValueError(
                    f"{op}: with dilation {self.dilation} and padding {self.padding} some windows "
                    f"hold no input cell (input {H}x{W}); every window must hold at least one"
                )
        self.out_shape = (x_shape[0], x_shape[1], self.Ho, self.Wo)
        self.planes = x_shape[0] * x_shape[1]
        self.in_hw = (H, W)


def _check_dy(op, dy, expected):
    check.array(op, "dy", dy)
    if tuple(dy.shape) != tuple(expected):
        raise ValueError(f"{op}: dy must have shape {tuple(expected)}, got {tuple(dy.shape)}")


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling with argmax indices.

    Returns:
        (y, indices): y (N, C, Ho, Wo); indices int64, flat h*W + w within each plane.
    """
    op = "max_pool2d"
    check.array(op, "x", x)
    g = _Pool(op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    y = check.empty(op, x, g.out_shape)
    indices = check.empty(op, x, g.out_shape, dtype="int64")
    if _backend.is_cuda_array(x):
        _backend._cuda.max_pool2d_forward(y.data.ptr, indices.data.ptr, x.data.ptr, x.dtype.name,
                                          g.planes, g.in_hw, g.kernel, g.stride, g.padding,
                                          g.dilation, g.ceil_mode, _backend.cuda_stream_ptr())
    else:
        _cpu.max_pool2d_forward(y, indices, x, g.kernel, g.stride, g.padding, g.dilation,
                                g.ceil_mode)
    return y, indices


def max_pool2d_backward(dy, indices, x_shape, kernel_size=None, stride=None, padding=0,
                        dilation=1, ceil_mode=False):
    """Gradient of :func:`max_pool2d`: each dy goes to its argmax cell (summed when shared).

    Args:
        dy: (N, C, Ho, Wo) gradient of y. indices: int64, same shape, flat h*W + w per plane.
        x_shape: (N, C, H, W).
        kernel_size, stride, padding, dilation, ceil_mode: the forward's geometry, optional.
            When given it is validated against dy's shape, and on the GPU each input cell
            gathers over the windows covering it; without it (or when some index lies
            outside its own window) the GPU adds dy in flat order, one warp per plane.
            The result is the same either way, and the same as on the CPU.

    Returns:
        dx with shape ``x_shape``. An index outside the input plane raises ValueError.
    """
    op = "max_pool2d_backward"
    check.array(op, "dy", dy)
    check.array(op, "indices", indices, dtype="int64")
    check.same_device(op, "dy", dy, "indices", indices)
    x_shape = check.shape4(op, "x_shape", x_shape)
    if tuple(indices.shape) != tuple(dy.shape):
        raise ValueError(f"{op}: indices must have the shape of dy {tuple(dy.shape)}, got {tuple(indices.shape)}")
    if dy.shape[:2] != x_shape[:2]:
        raise ValueError(f"{op}: dy's (N, C) {tuple(dy.shape[:2])} must match x_shape's {x_shape[:2]}")
    g = None
    if kernel_size is not None:
        g = _Pool(op, x_shape, kernel_size, stride, padding, dilation, ceil_mode)
        _check_dy(op, dy, g.out_shape)
    elif (stride is not None or check.pair(op, "padding", padding, 0) != (0, 0)
          or check.pair(op, "dilation", dilation, 1) != (1, 1) or ceil_mode):
        raise ValueError(f"{op}: stride, padding, dilation and ceil_mode need kernel_size")
    dx = check.empty(op, dy, x_shape)
    if _backend.is_cuda_array(dy):
        _max_pool2d_backward_cuda(op, dx, dy, indices, g)
    else:
        _cpu.max_pool2d_backward(dx, dy, indices)
    return dx


def _max_pool2d_backward_cuda(op, dx, dy, indices, g):
    """dx from the gather when the geometry is known and every index lies in its window,
    else from the ordered scatter; one flag read-back either way."""
    N, C, H, W = dx.shape
    cuda, stream = _backend._cuda, _backend.cuda_stream_ptr()
    if g is not None:
        flags = check.index_flags(dy, 2)  # [first index outside the plane, outside its window]
        cuda.max_pool2d_backward(dx.data.ptr, flags.data.ptr, dy.data.ptr, indices.data.ptr,
                                 dy.dtype.name, g.planes, g.in_hw, g.kernel, g.stride, g.padding,
                                 g.dilation, g.ceil_mode, stream)
        outside_plane, outside_window = (int(v) for v in flags.get())
        if outside_plane != check.NO_BAD_INDEX:
            check.raise_bad_index(op, indices, outside_plane, "input", H * W)
        if outside_window == check.NO_BAD_INDEX:
            return
    flag = check.index_flags(dy)
    cuda.max_pool2d_backward_ordered(dx.data.ptr, flag.data.ptr, dy.data.ptr, indices.data.ptr,
                                     dy.dtype.name, N * C, (H, W), tuple(dy.shape[2:]), stream)
    bad = int(flag.get()[0])
    if bad != check.NO_BAD_INDEX:
        check.raise_bad_index(op, indices, bad, "input", H * W)


def _divisor(op, divisor_override):
    if divisor_override is None:
        return 0
    return check.integer(op, "divisor_override", divisor_override, 1)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, ``torch.nn.functional.avg_pool2d`` semantics."""
    return _avg_pool2d("avg_pool2d", x, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def _avg_pool2d(op, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    check.array(op, "x", x)
    g = _Pool(op, x.shape, kernel_size, stride, padding, 1, ceil_mode)
    count_include_pad = check.boolean(op, "count_include_pad", count_include_pad)
    divisor = _divisor(op, divisor_override)
    y = check.empty(op, x, g.out_shape)
    if _backend.is_cuda_array(x):
        _backend._cuda.avg_pool2d_forward(y.data.ptr, x.data.ptr, x.dtype.name, g.planes, g.in_hw,
                                          g.kernel, g.stride, g.padding, g.ceil_mode,
                                          count_include_pad, divisor,
                                          _backend.cuda_stream_ptr())
    else:
        _cpu.avg_pool2d_forward(y, x, g.kernel, g.stride, g.padding, g.ceil_mode,
                                count_include_pad, divisor)
    return y


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` (a gather over the covering windows)."""
    return _avg_pool2d_backward("avg_pool2d_backward", dy, x_shape, kernel_size, stride, padding,
                                ceil_mode, count_include_pad, divisor_override)


def _avg_pool2d_backward(op, dy, x_shape, kernel_size, stride, padding, ceil_mode,
                         count_include_pad, divisor_override):
    x_shape = check.shape4(op, "x_shape", x_shape)
    g = _Pool(op, x_shape, kernel_size, stride, padding, 1, ceil_mode)
    _check_dy(op, dy, g.out_shape)
    count_include_pad = check.boolean(op, "count_include_pad", count_include_pad)
    divisor = _divisor(op, divisor_override)
    dx = check.empty(op, dy, x_shape)
    if _backend.is_cuda_array(dy):
        _backend._cuda.avg_pool2d_backward(dx.data.ptr, dy.data.ptr, dy.dtype.name, g.planes,
                                           g.in_hw, g.kernel, g.stride, g.padding, g.ceil_mode,
                                           count_include_pad, divisor,
                                           _backend.cuda_stream_ptr())
    else:
        _cpu.avg_pool2d_backward(dx, dy, g.kernel, g.stride, g.padding, g.ceil_mode,
                                 count_include_pad, divisor)
    return dx


def sum_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Sum pooling: ``avg_pool2d(..., divisor_override=1)``."""
    return _avg_pool2d("sum_pool2d", x, kernel_size, stride, padding, ceil_mode, True, 1)


def sum_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Gradient of :func:`sum_pool2d`."""
    return _avg_pool2d_backward("sum_pool2d_backward", dy, x_shape, kernel_size, stride, padding,
                                ceil_mode, True, 1)
