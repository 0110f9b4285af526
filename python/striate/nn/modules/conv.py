"""``Conv2d`` and ``ConvTranspose2d``, with PyTorch's arguments, parameter shapes and init.

Weights are ``(out_channels, in_channels // groups, kh, kw)`` for Conv2d and
``(in_channels, out_channels // groups, kh, kw)`` for ConvTranspose2d; both
start from ``kaiming_uniform_(a=sqrt(5))`` and a bias ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))``, where fan_in is ``weight.shape[1] * kh * kw`` (so a
transposed convolution's fan_in counts its output channels, as in PyTorch).
"""
from __future__ import annotations


from .. import functional as F
from .. import init
from ...tensor import zeros
from .module import Module, Parameter
from .utils import _pair

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Arguments, parameters and repr shared by the convolution layers."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got padding_mode='{padding_mode}'")
        kernel_size, stride, dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of ('same', 'valid')")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = _pair(padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.transposed, self.output_padding = transposed, _pair(output_padding)
        self.groups, self.padding_mode = groups, padding_mode
        if transposed:
            shape = (in_channels, out_channels // groups) + kernel_size
        else:
            shape = (out_channels, in_channels // groups) + kernel_size
        self.weight = Parameter(zeros(shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(zeros(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_weight_bias_(self.weight, self.bias)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` input.

    Args:
        in_channels, out_channels: channel counts; both divisible by ``groups``.
        kernel_size, stride, dilation: an int or a pair.
        padding: an int, a pair, ``"same"`` (stride 1 only) or ``"valid"``.
        groups: number of blocked connections from input to output channels.
        bias: whether to add a learnable bias.
        padding_mode: ``zeros``, ``reflect``, ``replicate`` or ``circular``.
        device, dtype: where and in which precision to create the parameters.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, 0, groups,
                         bias, padding_mode, device, dtype)

    def forward(self, input):
        # striate's F.conv2d pads with padding_mode itself (one kernel, no padded copy)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                        padding_mode=self.padding_mode)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the gradient of Conv2d with respect to its input).

    Args:
        in_channels, out_channels: channel counts; both divisible by ``groups``.
        kernel_size, stride, padding, dilation: an int or a pair.
        output_padding: extra rows/columns on one side of the output (less
            than stride or dilation), to pick among the sizes a strided
            Conv2d maps to the same input size.
        groups, bias, device, dtype: as in :class:`Conv2d`.
        padding_mode: only ``zeros``.

    ``forward(input, output_size=None)``: an ``output_size`` (H, W) chooses
    the output padding that gives that size.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__} does not support string padding, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, True, output_padding,
                         groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """The output padding that makes the output ``output_size`` (PyTorch's rule)."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(output_size)
        if len(output_size) == input.dim():
            output_size = output_size[-2:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2D: for {input.dim()}D input, output_size must have 2 or "
                             f"{input.dim()} elements (got {len(output_size)})")
        result = []
        for d in range(2):
            smallest = ((input.shape[input.dim() - 2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(f"requested an output size of {output_size}, but valid sizes range from "
                                 f"{smallest} to {largest} (for an input of {input.shape[-2:]})")
            result.append(output_size[d] - smallest)
        return tuple(result)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)
