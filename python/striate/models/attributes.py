"""``ShapeAttributeNet``: an independent classifier of a shape's kind and colour, for judging samples.

The GAN acceptance checks ask whether generated ``Shapes`` images show the shape and
colour their caption names. This small CNN, trained on real single-shape ``Shapes``
images (``experiments/gan_classifiers.py``), answers that: it has one trunk and two
heads, ``kind`` (ellipse, rectangle, triangle) and ``colour`` (the seven ``Shapes``
colours), each returning logits. Inputs are (N, 3, S, S) images in [0, 1] with S a
multiple of 4 (32 for Stage-II samples; Stage-I samples are upsampled first).
"""
from __future__ import annotations

from .. import nn
from ._layers import AdaptiveAvgPool2d

__all__ = ["ShapeAttributeNet", "conv_trunk"]


def conv_trunk(width: int = 32) -> nn.Sequential:
    """(N, 3, H, W) -> (N, 2 * width) features, H and W multiples of 4: conv3x3-BN-ReLU twice,
    max-pool, conv3x3-BN-ReLU, max-pool, conv3x3-BN-ReLU, global average pooling."""
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        AdaptiveAvgPool2d(1), nn.Flatten())


class ShapeAttributeNet(nn.Module):
    """``conv_trunk`` (conv-BN-ReLU blocks, two poolings, global average pooling), then two linear heads:
    ``num_kinds`` and ``num_colours`` logits (``Shapes``' 3 kinds and 7 colours, in the order of
    ``striate.data.Shapes.class_names[1:]`` and ``.colours``)."""

    def __init__(self, width: int = 32, num_kinds: int = 3, num_colours: int = 7):
        super().__init__()
        w = width
        self.features = conv_trunk(w)
        self.kind = nn.Linear(2 * w, num_kinds)
        self.colour = nn.Linear(2 * w, num_colours)

    def forward(self, x):
        """(kind logits (N, 3), colour logits (N, 7))."""
        h = self.features(x)
        return self.kind(h), self.colour(h)
