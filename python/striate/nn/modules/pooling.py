"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``SumPool2d``, ``MaxUnpool2d``.

Arguments and reprs follow ``torch.nn``; ``stride`` defaults to the kernel
size. ``SumPool2d`` is striate's own: ``AvgPool2d`` without the division.
"""
from __future__ import annotations

from .. import functional as F
from .module import Module
from .utils import _pair


class _PoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_PoolNd):
    """Max over ``kernel_size`` windows of ``(N, C, H, W)`` input.

    Args:
        kernel_size, stride (default: kernel_size), padding, dilation: an int or a pair.
        return_indices: also return the argmax of each window (flat ``h*W+w``
            per plane), as :class:`MaxUnpool2d` takes them.
        ceil_mode: round the output size up instead of down.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding)
        self.dilation, self.return_indices, self.ceil_mode = dilation, return_indices, ceil_mode

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_PoolNd):
    """Mean over ``kernel_size`` windows.

    Args:
        kernel_size, stride (default: kernel_size), padding: an int or a pair.
        ceil_mode: round the output size up instead of down.
        count_include_pad: whether zero padding counts in the divisor.
        divisor_override: a fixed divisor instead of the window size.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode, self.count_include_pad, self.divisor_override = ceil_mode, count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class SumPool2d(_PoolNd):
    """Sum over ``kernel_size`` windows (``AvgPool2d`` with ``divisor_override=1``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return F.sum_pool2d(input, self.kernel_size, stride=self.stride, padding=self.padding,
                            ceil_mode=self.ceil_mode)


class MaxUnpool2d(_PoolNd):
    """Partial inverse of ``MaxPool2d``: scatter each value to its index, zeros elsewhere.

    ``forward(input, indices, output_size=None)``; ``output_size`` resolves
    the ambiguity of the unpooled size when the pooling rounded down.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(_pair(kernel_size), _pair(stride if stride is not None else kernel_size), _pair(padding))

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)
