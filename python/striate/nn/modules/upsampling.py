"""``Upsample``: resize ``(N, C, H, W)`` input with ``F.interpolate``, as ``torch.nn.Upsample``."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Upsample(Module):
    """Resize to ``size`` or by ``scale_factor``.

    Args:
        size: the output ``(H, W)`` (or one int for both).
        scale_factor: a multiplier for H and W (or a pair); give this or size.
        mode: ``"nearest"`` or ``"bilinear"``.
        align_corners: for ``bilinear``: map corner pixel centres onto each
            other (True) or corner edges (False, PyTorch's default).
        recompute_scale_factor: as in ``F.interpolate``.
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        kwargs = {}
        if self.recompute_scale_factor is not None:
            kwargs["recompute_scale_factor"] = self.recompute_scale_factor
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners, **kwargs)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        return info + ", mode=" + repr(self.mode)
