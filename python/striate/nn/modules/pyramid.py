"""``PyrDown`` and ``PyrUp``: one level of an image pyramid (``cv2.pyrDown``/``cv2.pyrUp``) as layers."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class PyrDown(Module):
    """Blur with the 5x5 binomial kernel and drop every other row and column: ``(H, W) -> ((H+1)//2, (W+1)//2)``."""

    def forward(self, input):
        return F.pyr_down(input)


class PyrUp(Module):
    """Upsample by two with the 5x5 binomial kernel (times 4): ``(H, W) -> (2H, 2W)``.

    ``forward(input, output_size=None)``: an explicit ``(H', W')`` (each twice
    the input size, or one less or more when odd, as ``cv2.pyrUp`` allows)
    inverts the size change of a ``PyrDown`` of an odd-sized image.
    """

    def forward(self, input, output_size=None):
        if output_size is None:
            return F.pyr_up(input)
        return F.pyr_up(input, output_size)
