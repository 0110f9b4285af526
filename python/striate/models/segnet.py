"""SegNet (Badrinarayanan et al., 2015): an encoder-decoder whose decoder unpools with the encoder's indices.

Each encoder level is a VGG-style block (conv3x3(pad 1) + BatchNorm2d + ReLU, twice)
followed by ``MaxPool2d(2, return_indices=True)``; the indices (argmax positions)
and the pre-pool size are kept. Each decoder level mirrors one encoder level, deepest
first: ``MaxUnpool2d(2)`` puts every pooled value back at exactly its argmax position
(zeros elsewhere), then a block of the same kind. ``classifier`` is a 1x1 conv to
per-pixel logits (N, num_classes, H, W). H and W must be multiples of 2**depth.
"""
from __future__ import annotations

from .. import nn

__all__ = ["SegNet", "segnet"]


def _vgg_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3x3 + BN + ReLU, twice (indices 0..5)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU())


class SegNet(nn.Module):
    """``encoder`` / ``decoder`` ModuleLists of VGG blocks, ``pool``/``unpool``, 1x1 ``classifier``.

    Level ``i`` of the encoder has ``width * 2**i`` channels. ``decoder[j]`` follows the
    unpooling of encoder level ``depth - 1 - j`` and maps its channels to those of the level
    above (``width`` for the last one).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 4, depth: int = 3, width: int = 16):
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"segnet: depth ({depth}) and width ({width}) must be at least 1")
        self.depth = depth
        channels = [width * 2 ** i for i in range(depth)]
        self.encoder = nn.ModuleList([_vgg_block(c_in, c_out) for c_in, c_out
                                      in zip([in_channels] + channels[:-1], channels)])
        outs = channels[::-1][1:] + [width]
        self.decoder = nn.ModuleList([_vgg_block(c_in, c_out) for c_in, c_out in zip(channels[::-1], outs)])
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward_encoder(self, x):
        """Run the encoder.

        Returns:
            (features, indices, sizes): the deepest pooled features, then per level (shallow
            first) the pooling indices and the (H, W) before pooling.
        """
        if x.shape[-1] % 2 ** self.depth or x.shape[-2] % 2 ** self.depth:
            raise ValueError(f"segnet: input height and width must be multiples of 2**depth = "
                             f"{2 ** self.depth}, got {tuple(x.shape[-2:])}")
        indices, sizes = [], []
        for block in self.encoder:
            x = block(x)
            sizes.append(tuple(x.shape[-2:]))
            x, idx = self.pool(x)
            indices.append(idx)
        return x, indices, sizes

    def forward_decoder(self, x, indices, sizes):
        """Unpool with the stored indices (deepest first), each followed by a decoder block."""
        for block, idx, size in zip(self.decoder, indices[::-1], sizes[::-1]):
            x = block(self.unpool(x, idx, output_size=size))
        return self.classifier(x)

    def forward(self, x):
        return self.forward_decoder(*self.forward_encoder(x))


def segnet(in_channels: int = 3, num_classes: int = 4, depth: int = 3, width: int = 16) -> SegNet:
    """A SegNet with ``depth`` pooling levels, ``width`` channels at the first; per-pixel logits out."""
    return SegNet(in_channels, num_classes, depth, width)
