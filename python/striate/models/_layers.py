"""Parameter-free layers the model zoo needs beyond ``striate.nn``.

``AdaptiveAvgPool2d`` follows ``torch.nn.AdaptiveAvgPool2d``: output cell
``i`` of an axis of length ``L`` pooled to ``n`` averages input positions
``floor(i * L / n)`` to ``ceil((i + 1) * L / n) - 1``. When ``n`` divides ``L``
that is ``avg_pool2d`` with kernel = stride = ``L / n``; otherwise the windows
vary in size (or overlap, or repeat when ``L < n``) and each one is sliced and
averaged. A rectangle's mean is the mean over columns of the row means, so the
two axes are pooled one after the other.
"""
from __future__ import annotations

from .. import nn
from ..nn import functional as F
from ..tensor import cat

__all__ = ["AdaptiveAvgPool2d", "adaptive_avg_pool2d"]


def _window(i: int, length: int, size: int) -> tuple[int, int]:
    """[start, end) of output cell ``i`` when an axis of ``length`` is pooled to ``size``."""
    return (i * length) // size, -((-(i + 1) * length) // size)


def _adaptive_mean(x, dim: int, size: int):
    """Pool axis ``dim`` (2 or 3) of an NCHW tensor to ``size`` cells by windowed means."""
    length = x.shape[dim]
    cells = []
    for i in range(size):
        start, end = _window(i, length, size)
        index = (slice(None),) * dim + (slice(start, end),)
        cells.append(x[index].mean(dim=dim, keepdim=True))
    return cells[0] if size == 1 else cat(cells, dim=dim)


def adaptive_avg_pool2d(input, output_size):
    """``torch.nn.functional.adaptive_avg_pool2d`` for NCHW input.

    Args:
        input: a (N, C, H, W) Tensor.
        output_size: an int or an (out_h, out_w) pair; ``None`` in the pair keeps that axis.

    Returns:
        A (N, C, out_h, out_w) Tensor.
    """
    if input.dim() != 4:
        raise ValueError(f"adaptive_avg_pool2d: expected a 4D (N, C, H, W) input, got {input.dim()}D")
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    height, width = input.shape[2], input.shape[3]
    out_h = height if out_h is None else out_h
    out_w = width if out_w is None else out_w
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    if (out_h, out_w) == (height, width):
        return input
    if height % out_h == 0 and width % out_w == 0:
        kernel = (height // out_h, width // out_w)
        return F.avg_pool2d(input, kernel, stride=kernel)
    return _adaptive_mean(_adaptive_mean(input, 2, out_h), 3, out_w)


class AdaptiveAvgPool2d(nn.Module):
    """Average-pool an NCHW input to a fixed ``output_size`` whatever its height and width."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
