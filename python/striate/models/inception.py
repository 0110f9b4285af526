"""Inception blocks (Szegedy et al., 2014, "Going deeper with convolutions") and a small GoogLeNet-style net.

An ``InceptionBlock`` runs four branches on the same input and concatenates
their outputs on the channel axis, so it sees 1x1, 3x3 and 5x5 neighbourhoods
at once; the 1x1 "reduce" convs in front of the 3x3 and 5x5 keep the cost low::

    branch1  1x1 -> c1
    branch2  1x1 -> c3r, 3x3 (pad 1) -> c3
    branch3  1x1 -> c5r, 5x5 (pad 2) -> c5
    branch4  maxpool 3x3 (stride 1, pad 1), 1x1 -> pool_proj
    output   (N, c1 + c3 + c5 + pool_proj, H, W)

``inception_net`` is sized for 28x28 digits: a stem conv, two blocks, a max
pool, two more blocks, global average pooling, dropout and a Linear head.
"""
from __future__ import annotations

from .. import nn
from ..nn import init
from ..tensor import cat

__all__ = ["InceptionBlock", "InceptionNet", "inception_net"]


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int) -> list:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU()]


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1; 1x1->3x3; 1x1->5x5; maxpool->1x1), each conv followed by ReLU,
    concatenated on channels. Height and width are kept.

    Args:
        in_ch: input channels.
        c1: output channels of the 1x1 branch.
        c3r, c3: reduce and output channels of the 3x3 branch.
        c5r, c5: reduce and output channels of the 5x5 branch.
        pool_proj: output channels of the 1x1 after the max pool.
    """

    def __init__(self, in_ch: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int):
        super().__init__()
        self.branch1 = nn.Sequential(*_conv_relu(in_ch, c1, 1))
        self.branch2 = nn.Sequential(*_conv_relu(in_ch, c3r, 1), *_conv_relu(c3r, c3, 3))
        self.branch3 = nn.Sequential(*_conv_relu(in_ch, c5r, 1), *_conv_relu(c5r, c5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_relu(in_ch, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionNet(nn.Module):
    """A small GoogLeNet for (N, in_channels, 28, 28) inputs; ``forward`` returns logits.

    Shapes for 28x28: stem conv3x3 -> (N, 32, 28, 28), maxpool -> 14x14,
    inception 3a/3b -> 64 / 120 channels, maxpool -> 7x7, inception 4a/4b
    -> 128 / 160 channels, global mean -> (N, 160), dropout, Linear.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(*_conv_relu(in_channels, 32, 3), nn.MaxPool2d(2))
        self.inception3a = InceptionBlock(32, 16, 16, 24, 4, 8, 16)
        self.inception3b = InceptionBlock(64, 32, 32, 48, 8, 16, 24)
        self.maxpool = nn.MaxPool2d(2)
        self.inception4a = InceptionBlock(120, 40, 24, 48, 8, 16, 24)
        self.inception4b = InceptionBlock(128, 48, 32, 64, 8, 24, 24)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(self.inception4b.out_channels, num_classes)
        for m in self.modules():  # He init keeps the signal's scale through the ReLU stack
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                init.zeros_(m.bias)

    def forward(self, x):
        x = self.inception3b(self.inception3a(self.stem(x)))
        x = self.inception4b(self.inception4a(self.maxpool(x)))
        x = x.mean(dim=(2, 3))  # global average pool over H, W
        return self.fc(self.dropout(x))


def inception_net(num_classes: int = 10, in_channels: int = 1, dropout: float = 0.2) -> InceptionNet:
    """A small GoogLeNet-style network for 28x28 images.

    Args:
        num_classes: number of output logits.
        in_channels: channels of the input images.
        dropout: dropout probability before the Linear head.

    Returns:
        A freshly initialised :class:`InceptionNet`.
    """
    return InceptionNet(num_classes=num_classes, in_channels=in_channels, dropout=dropout)
