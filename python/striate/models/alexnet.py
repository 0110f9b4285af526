"""AlexNet with torchvision's module layout (``torchvision.models.alexnet``).

Parameter names and shapes equal torchvision's (``features.0.weight`` ...
``classifier.6.bias``), so its ``state_dict`` loads unchanged. Shapes for a
(N, 3, 224, 224) input: features -> (N, 256, 6, 6), avgpool (adaptive, 6x6)
-> flatten 9216 -> 4096 -> 4096 -> num_classes.
"""
from __future__ import annotations

from .. import nn
from ._layers import AdaptiveAvgPool2d

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky et al., 2012)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def alexnet(num_classes: int = 1000, dropout: float = 0.5) -> AlexNet:
    """AlexNet with torchvision's names; inputs of at least 63x63 pixels.

    Args:
        num_classes: number of output logits.
        dropout: dropout probability in the classifier.

    Returns:
        A freshly initialised :class:`AlexNet` (PyTorch's default layer init, as torchvision).
    """
    return AlexNet(num_classes=num_classes, dropout=dropout)
