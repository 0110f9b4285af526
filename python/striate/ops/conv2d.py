"""2-D convolution (cross-correlation): ``conv2d`` and ``conv2d_backward``.

Semantics of ``torch.nn.functional.conv2d`` plus ``torch.nn.Conv2d``'s
``padding_mode``: with a mode other than "zeros" the input is padded with
:func:`striate.ops.pad2d` first and the convolution itself is unpadded.
CuPy arrays run the implicit-GEMM CUDA kernels (csrc/cuda/conv2d.cu); the
weight gradient's split-reduction workspace is allocated here with CuPy.
"""
from __future__ import annotations

from .. import _backend, _cpu
from .. import cuda as cuda_settings
from . import _check as check
from .pad2d import _check_pad_limits, pad2d, pad2d_backward

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _padding(op, padding, kernel, stride, dilation):
    """Returns (top, bottom, left, right) for int / pair / "same" / "valid"."""
    if isinstance(padding, str):
        check.choice(op, "padding", padding, ("same", "valid"))
        if padding == "valid":
            return (0, 0, 0, 0)
        if stride != (1, 1):
            raise ValueError(f"{op}: padding='same' requires stride 1, got stride {stride}")
        total_h = dilation[0] * (kernel[0] - 1)
        total_w = dilation[1] * (kernel[1] - 1)
        return (total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2)
    ph, pw = check.pair(op, "padding", padding, 0)
    return (ph, ph, pw, pw)


class _Conv:
    """Validated geometry of one convolution call."""

    def __init__(self, op, x_shape, w, stride, padding, dilation, groups, padding_mode):
        self.stride = check.pair(op, "stride", stride, 1)
        self.dilation = check.pair(op, "dilation", dilation, 1)
        self.groups = check.integer(op, "groups", groups, 1)
        check.choice(op, "padding_mode", padding_mode, PADDING_MODES)
        N, C, H, W = x_shape
        K, Cg, kh, kw = w.shape
        if C % self.groups or K % self.groups:
            raise ValueError(
                f"{op}: in_channels ({C}) and out_channels ({K}) must be divisible by groups "
                f"({self.groups})"
            )
        if Cg * self.groups != C:
            raise ValueError(
                f"{op}: weight.shape[1] ({Cg}) must equal in_channels / groups ({C // self.groups})"
            )
        top, bottom, left, right = _padding(op, padding, (kh, kw), self.stride, self.dilation)
        self.mode = padding_mode
        if padding_mode != "zeros":
            # Explicit padding of the input, then an unpadded convolution.
            self.pre_pad = (left, right, top, bottom)
            _check_pad_limits(op, x_shape, self.pre_pad, padding_mode)
            self.pad_mode = padding_mode
            H, W = H + top + bottom, W + left + right
            top = bottom = left = right = 0
        else:
            self.pre_pad = None
        eff_h, eff_w = self.dilation[0] * (kh - 1) + 1, self.dilation[1] * (kw - 1) + 1
        if H + top + bottom < eff_h or W + left + right < eff_w:
            raise ValueError(
                f"{op}: kernel ({eff_h}x{eff_w} with dilation) is larger than the padded input "
                f"({H + top + bottom}x{W + left + right})"
            )
        self.pad = (top, bottom, left, right)
        self.Ho = check.output_length(op, "output height", _cpu.conv_output_size(
            H, kh, self.stride[0], top + bottom, self.dilation[0]))
        self.Wo = check.output_length(op, "output width", _cpu.conv_output_size(
            W, kw, self.stride[1], left + right, self.dilation[1]))
        self.out_shape = (N, K, self.Ho, self.Wo)

    def check_cpu_workspace(self, op, xp, w):
        """The CPU kernels' scratch (csrc/cpu/conv2d.cpp counts it) must fit in memory."""
        check.fits_in_memory(op, xp, "the im2col workspace", _cpu.conv2d_workspace_bytes(
            xp, w, self.stride, self.pad, self.dilation, self.groups))

    def padded_input(self, x):
        return x if self.pre_pad is None else pad2d(x, self.pre_pad, self.pad_mode)

    def cuda_sizes(self, xp_shape, w_shape):
        """The explicit sizes striate._cuda's conv2d functions take, for the padded input."""
        N, C, H, W = xp_shape
        K, _, kh, kw = w_shape
        return (N, C, H, W, K, kh, kw, self.Ho, self.Wo, *self.stride, self.pad[0], self.pad[2],
                *self.dilation, self.groups)


def _ptr(a):
    """Device pointer of a CuPy array, 0 for None."""
    return 0 if a is None else a.data.ptr


def _check_weight(op, x, w, b):
    check.array(op, "weight", w)
    check.same_kind(op, "x", x, "weight", w)
    if b is not None:
        check.array(op, "bias", b, ndim=1)
        check.same_kind(op, "x", x, "bias", b)
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"{op}: bias must have shape ({w.shape[0]},), got {tuple(b.shape)}")


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """2-D cross-correlation, ``torch.nn.functional.conv2d`` semantics.

    Args:
        x: (N, C, H, W) input. w: (K, C/groups, kh, kw) weight. b: (K,) bias or None.
        stride, dilation: int or pair. padding: int, pair, "same" or "valid".
        groups: channel groups. padding_mode: "zeros", "reflect", "replicate", "circular".

    Returns:
        (N, K, Ho, Wo) array.
    """
    op = "conv2d"
    check.array(op, "x", x)
    _check_weight(op, x, w, b)
    g = _Conv(op, x.shape, w, stride, padding, dilation, groups, padding_mode)
    xp = g.padded_input(x)
    y = check.empty(op, x, g.out_shape)
    if _backend.is_cuda_array(x):
        _backend._cuda.conv2d_forward(y.data.ptr, xp.data.ptr, w.data.ptr, _ptr(b), x.dtype.name,
                                      *g.cuda_sizes(xp.shape, w.shape),
                                      bool(cuda_settings.allow_tf32), _backend.cuda_stream_ptr())
    else:
        g.check_cpu_workspace(op, xp, w)
        with check.allocation(op, "the im2col workspace"):
            _cpu.conv2d_forward(y, xp, w, b, g.stride, g.pad, g.dilation, g.groups)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros",
                    needs=(True, True, True)):
    """Gradients of :func:`conv2d` with respect to (x, w, b).

    Args:
        dy: gradient of the output, shaped like conv2d's result.
        needs: which of (dx, dw, db) to compute; an entry not needed is None.

    Returns:
        (dx, dw, db).
    """
    op = "conv2d_backward"
    check.array(op, "dy", dy)
    check.array(op, "x", x)
    _check_weight(op, x, w, None)
    check.same_kind(op, "x", x, "dy", dy)
    needs = check.needs(op, needs)
    g = _Conv(op, x.shape, w, stride, padding, dilation, groups, padding_mode)
    if tuple(dy.shape) != g.out_shape:
        raise ValueError(f"{op}: dy must have shape {g.out_shape}, got {tuple(dy.shape)}")
    xp = g.padded_input(x)
    dxp = check.empty(op, x, xp.shape) if needs[0] else None
    dw = check.empty(op, w, w.shape) if needs[1] else None
    db = check.empty(op, dy, (w.shape[0],)) if needs[2] else None
    if _backend.is_cuda_array(x):
        cuda = _backend._cuda
        sizes = g.cuda_sizes(xp.shape, w.shape)
        count = cuda.conv2d_backward_workspace(x.dtype.name, *sizes) if needs[1] else 0
        workspace = check.empty(op, x, (count,)) if count else None
        cuda.conv2d_backward(_ptr(dxp), _ptr(dw), _ptr(db), dy.data.ptr, xp.data.ptr, w.data.ptr,
                             x.dtype.name, *sizes, _ptr(workspace), count,
                             bool(cuda_settings.allow_tf32), _backend.cuda_stream_ptr())
    else:
        g.check_cpu_workspace(op, xp, w)
        with check.allocation(op, "the im2col workspace"):
            _cpu.conv2d_backward(dxp, dw, db, dy, xp, w, g.stride, g.pad, g.dilation, g.groups)
    dx = dxp
    if dxp is not None and g.pre_pad is not None:
        dx = pad2d_backward(dxp, x.shape, g.pre_pad, g.pad_mode)
    return dx, dw, db


def conv2d_reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The plain loop-nest CPU kernel that the fast path is tested against."""
    op = "conv2d_reference"
    check.array(op, "x", x)
    _check_weight(op, x, w, b)
    g = _Conv(op, x.shape, w, stride, padding, dilation, groups, "zeros")
    check.cpu_only(op, x)
    y = check.empty(op, x, g.out_shape)
    _cpu.conv2d_forward(y, x, w, b, g.stride, g.pad, g.dilation, g.groups, reference=True)
    return y
