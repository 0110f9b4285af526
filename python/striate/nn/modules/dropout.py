"""``Dropout`` (elementwise) and ``Dropout2d`` (whole channels), as in ``torch.nn``.

Both are inverted dropout: in training, kept values are scaled by
``1/(1-p)`` so that eval mode is the identity. Masks come from
``F.dropout``'s Philox stream, which ``striate.manual_seed`` seeds.
"""
from __future__ import annotations

from .. import functional as F
from ...tensor import ones
from .module import Module


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zero each element with probability ``p`` in training; identity in eval.

    ``inplace`` is accepted for PyTorch compatibility; the result is a new tensor.
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels of ``(N, C, H, W)`` (or ``(C, H, W)``) input with probability ``p``.

    One keep/drop draw per (n, c) plane: a ``(N, C, 1, 1)`` tensor of ones
    goes through ``F.dropout`` and multiplies the input.
    """

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"Dropout2d: expected 3D or 4D input, got {input.dim()}D input of shape {input.shape}")
        if not self.training or self.p == 0:
            return input
        mask_shape = input.shape[:2] + (1,) * (input.dim() - 2)
        mask = F.dropout(ones(mask_shape, dtype=input.dtype, device=input.device), self.p, True)
        return input * mask
