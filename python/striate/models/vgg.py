"""VGG 11/13/16/19 (Simonyan & Zisserman, 2014), plain and with batch norm, as torchvision builds them.

``features`` is one Sequential of conv3x3(pad 1) [+ BatchNorm2d] + ReLU
entries and 2x2 max pools, numbered as in torchvision (``features.0``,
``features.1``...), then ``avgpool`` (adaptive, 7x7) and ``classifier``
(``classifier.0``/``.3``/``.6`` are the Linear layers). A torchvision
``state_dict`` therefore loads unchanged.
"""
from __future__ import annotations

from .. import nn
from ..nn import init
from ._layers import AdaptiveAvgPool2d

__all__ = ["VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

# torchvision's configurations: output channels of each conv, "M" for a 2x2 max pool
_CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def _make_features(config, batch_norm: bool) -> nn.Sequential:
    layers, in_channels = [], 3
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """torchvision's VGG: ``features``, ``avgpool`` (adaptive 7x7), ``classifier``."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():  # torchvision's VGG initialisation
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _vgg(depth: int, batch_norm: bool, num_classes: int, dropout: float) -> VGG:
    return VGG(_make_features(_CONFIGS[depth], batch_norm), num_classes=num_classes, dropout=dropout)


def vgg11(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A) with torchvision's names; inputs of at least 32x32."""
    return _vgg(11, False, num_classes, dropout)


def vgg13(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B) with torchvision's names."""
    return _vgg(13, False, num_classes, dropout)


def vgg16(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D) with torchvision's names."""
    return _vgg(16, False, num_classes, dropout)


def vgg19(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E) with torchvision's names."""
    return _vgg(19, False, num_classes, dropout)


def vgg11_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-11 with a BatchNorm2d after every conv, torchvision's names."""
    return _vgg(11, True, num_classes, dropout)


def vgg13_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-13 with batch norm, torchvision's names."""
    return _vgg(13, True, num_classes, dropout)


def vgg16_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm, torchvision's names."""
    return _vgg(16, True, num_classes, dropout)


def vgg19_bn(num_classes: int = 1000, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch norm, torchvision's names."""
    return _vgg(19, True, num_classes, dropout)
