"""U-Net (Ronneberger et al., 2015): contracting path, bottleneck, expanding path with concatenated skips.

Level ``i`` (0..depth-1) of the contracting path, ``down[i]``, is conv3x3 + ReLU twice
with ``base * 2**i`` channels, then a 2x2 max pool. ``bottleneck`` is the same block at
``base * 2**depth`` channels. Expanding level ``j`` upsamples with ``up[j]``, a
ConvTranspose2d(k=2, s=2) halving the channels, concatenates the skip of the matching
contracting level on the channel axis (skip first), and applies ``decode[j]`` (two
conv3x3 + ReLU). ``classifier`` is a 1x1 conv to per-pixel logits. With
``batch_norm=True`` every conv is followed by BatchNorm2d (a common modern variant,
not in the 2015 paper; it trains faster from scratch).

Sizes:
- ``valid=False`` (padding 1): the output has the input's size; H and W must be
  multiples of 2**depth.
- ``valid=True`` (the paper's unpadded convs, padding 0): every conv trims 2 pixels, and
  each skip is centre-cropped to the upsampled size. Going down, a side ``s`` becomes
  ``(s - 4) / 2`` at each level, which must be a whole number every time (``s - 4`` even
  and positive), and the bottleneck leaves ``s_d - 4 > 0``; going up, each level maps
  ``s -> 2 s - 4``. The output is therefore smaller than the input: depth 4 takes
  572 -> 388, depth 2 takes 44 -> 4. ``unet_output_size`` computes it and checks the input.
"""
from __future__ import annotations

from .. import nn
from ..tensor import cat

__all__ = ["UNet", "unet", "unet_output_size"]


def _double_conv(in_channels: int, out_channels: int, padding: int, batch_norm: bool = False) -> nn.Sequential:
    """conv3x3 + ReLU, twice (indices 0..3); with batch_norm, conv3x3 + BN + ReLU twice (0..5)."""
    layers = []
    for c_in in (in_channels, out_channels):
        layers.append(nn.Conv2d(c_in, out_channels, 3, padding=padding))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _centre_crop(x, height: int, width: int):
    """The central (height, width) window of an NCHW tensor."""
    top, left = (x.shape[2] - height) // 2, (x.shape[3] - width) // 2
    return x[:, :, top:top + height, left:left + width]


def unet_output_size(size: int, depth: int, valid: bool) -> int:
    """The output side of a U-Net for one input side.

    Args:
        size: the input height or width. depth: number of poolings. valid: unpadded convs.

    Returns:
        The output height or width; raises ValueError when ``size`` does not fit the rules above.
    """
    trim = 4 if valid else 0
    s = size
    for level in range(depth):
        s -= trim
        if s <= 0 or s % 2:
            raise ValueError(f"unet: input side {size} gives an odd or empty side {s} before pool "
                             f"{level} (depth {depth}, valid={valid})")
        s //= 2
    s -= trim
    if s <= 0:
        raise ValueError(f"unet: input side {size} leaves no bottleneck pixels (depth {depth}, valid={valid})")
    for _ in range(depth):
        s = 2 * s - trim
    if s <= 0:
        raise ValueError(f"unet: input side {size} leaves no output pixels (depth {depth}, valid={valid})")
    return s


class UNet(nn.Module):
    """``down`` / ``up`` / ``decode`` ModuleLists, ``bottleneck``, ``pool``, 1x1 ``classifier``."""

    def __init__(self, in_channels: int = 3, num_classes: int = 4, depth: int = 4, base: int = 64,
                 valid: bool = False, batch_norm: bool = False):
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"unet: depth ({depth}) and base ({base}) must be at least 1")
        self.depth, self.valid = depth, valid
        padding = 0 if valid else 1
        channels = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(c_in, c_out, padding, batch_norm) for c_in, c_out
                                   in zip([in_channels] + channels[:depth - 1], channels[:depth])])
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = _double_conv(channels[depth - 1], channels[depth], padding, batch_norm)
        rising = channels[::-1]  # deepest first
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in rising[:-1]])
        self.decode = nn.ModuleList([_double_conv(c, c // 2, padding, batch_norm) for c in rising[:-1]])
        self.classifier = nn.Conv2d(base, num_classes, 1)

    def forward(self, x):
        for side in x.shape[-2:]:
            unet_output_size(side, self.depth, self.valid)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.up, self.decode, skips[::-1]):
            x = up(x)
            if self.valid:
                skip = _centre_crop(skip, x.shape[2], x.shape[3])
            x = block(cat([skip, x], dim=1))
        return self.classifier(x)


def unet(in_channels: int = 3, num_classes: int = 4, depth: int = 4, base: int = 64,
         valid: bool = False, batch_norm: bool = False) -> UNet:
    """A U-Net; per-pixel logits out. See the module docstring for the input-size rules."""
    return UNet(in_channels, num_classes, depth, base, valid, batch_norm)
