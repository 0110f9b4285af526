"""Transposed 2-D convolution: ``conv_transpose2d`` and its backward.

Semantics of ``torch.nn.functional.conv_transpose2d``; the kernels are the
convolution kernels run in the adjoint direction (csrc/cpu/conv_transpose2d.cpp,
csrc/cuda/conv_transpose2d.cu for CuPy arrays).
"""
from __future__ import annotations

from .. import _backend, _cpu
from .. import cuda as cuda_settings
from . import _check as check
from .conv2d import _ptr


class _ConvT:
    def __init__(self, op, x_shape, w, stride, padding, output_padding, groups, dilation):
        self.stride = check.pair(op, "stride", stride, 1)
        self.padding = check.pair(op, "padding", padding, 0)
        self.output_padding = check.pair(op, "output_padding", output_padding, 0)
        self.dilation = check.pair(op, "dilation", dilation, 1)
        self.groups = check.integer(op, "groups", groups, 1)
        N, C, H, W = x_shape
        Cin, Kg, kh, kw = w.shape
        if Cin != C:
            raise ValueError(f"{op}: weight.shape[0] ({Cin}) must equal in_channels ({C})")
        if C % self.groups:
            raise ValueError(f"{op}: in_channels ({C}) must be divisible by groups ({self.groups})")
        for i in range(2):
            op_ = self.output_padding[i]
            if op_ >= self.stride[i] and op_ >= self.dilation[i]:
                raise ValueError(
                    f"{op}: output_padding ({op_}) must be smaller than stride "
                    f"({self.stride[i]}) or dilation ({self.dilation[i]})"
                )
        self.Ho, self.Wo = (
            check.output_length(op, "output size", _cpu.conv_transpose_output_size(
                n, k, self.stride[i], self.padding[i], self.dilation[i], self.output_padding[i]))
            for i, (n, k) in enumerate(((H, kh), (W, kw))))
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"{op}: the output size ({self.Ho}x{self.Wo}) would be empty")
        self.out_shape = (N, Kg * self.groups, self.Ho, self.Wo)

    def check_cpu_workspace(self, op, x, w):
        """The CPU kernels' scratch (csrc/cpu/conv2d.cpp counts it) must fit in memory."""
        check.fits_in_memory(op, x, "the im2col workspace", _cpu.conv_transpose2d_workspace_bytes(
            x, w, self.stride, self.padding, self.output_padding, self.dilation, self.groups))

    def cuda_sizes(self, x_shape, w_shape):
        """The explicit sizes striate._cuda's conv_transpose2d functions take."""
        N, Cin, H, W = x_shape
        _, _, kh, kw = w_shape
        return (N, Cin, H, W, self.out_shape[1], kh, kw, self.Ho, self.Wo, *self.stride,
                *self.padding, *self.dilation, self.groups)


def _check_args(op, x, w):
    check.array(op, "x", x)
    check.array(op, "weight", w)
    check.same_kind(op, "x", x, "weight", w)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution (the adjoint of conv2d), PyTorch semantics.

    Args:
        x: (N, Cin, H, W). w: (Cin, Cout/groups, kh, kw). b: (Cout,) or None.

    Returns:
        (N, Cout, (H-1)*s - 2p + d*(k-1) + output_padding + 1, ...) array.
    """
    op = "conv_transpose2d"
    _check_args(op, x, w)
    g = _ConvT(op, x.shape, w, stride, padding, output_padding, groups, dilation)
    if b is not None:
        check.array(op, "bias", b, ndim=1)
        check.same_kind(op, "x", x, "bias", b)
        if b.shape[0] != g.out_shape[1]:
            raise ValueError(f"{op}: bias must have shape ({g.out_shape[1]},), got {tuple(b.shape)}")
    y = check.empty(op, x, g.out_shape)
    if _backend.is_cuda_array(x):
        _backend._cuda.conv_transpose2d_forward(y.data.ptr, x.data.ptr, w.data.ptr, _ptr(b),
                                                x.dtype.name, *g.cuda_sizes(x.shape, w.shape),
                                                bool(cuda_settings.allow_tf32),
                                                _backend.cuda_stream_ptr())
    else:
        g.check_cpu_workspace(op, x, w)
        with check.allocation(op, "the im2col workspace"):
            _cpu.conv_transpose2d_forward(y, x, w, b, g.stride, g.padding, g.output_padding,
                                          g.dilation, g.groups)
    return y


def conv_transpose2d_backward(dy, x, w, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, needs=(True, True, True)):
    """Gradients of :func:`conv_transpose2d` with respect to (x, w, b).

    Returns:
        (dx, dw, db); an entry not in ``needs`` is None.
    """
    op = "conv_transpose2d_backward"
    _check_args(op, x, w)
    check.array(op, "dy", dy)
    check.same_kind(op, "x", x, "dy", dy)
    needs = check.needs(op, needs)
    g = _ConvT(op, x.shape, w, stride, padding, output_padding, groups, dilation)
    if tuple(dy.shape) != g.out_shape:
        raise ValueError(f"{op}: dy must have shape {g.out_shape}, got {tuple(dy.shape)}")
    dx = check.empty(op, x, x.shape) if needs[0] else None
    dw = check.empty(op, w, w.shape) if needs[1] else None
    db = check.empty(op, dy, (g.out_shape[1],)) if needs[2] else None
    if _backend.is_cuda_array(x):
        cuda = _backend._cuda
        sizes = g.cuda_sizes(x.shape, w.shape)
        count = cuda.conv_transpose2d_backward_workspace(x.dtype.name, *sizes) if needs[1] else 0
        workspace = check.empty(op, x, (count,)) if count else None
        cuda.conv_transpose2d_backward(_ptr(dx), _ptr(dw), _ptr(db), dy.data.ptr, x.data.ptr,
                                       w.data.ptr, x.dtype.name, *sizes, _ptr(workspace), count,
                                       bool(cuda_settings.allow_tf32), _backend.cuda_stream_ptr())
    else:
        g.check_cpu_workspace(op, x, w)
        with check.allocation(op, "the im2col workspace"):
            _cpu.conv_transpose2d_backward(dx, dw, db, dy, x, w, g.stride, g.padding,
                                           g.output_padding, g.dilation, g.groups)
    return dx, dw, db
