"""PyTorch twins of striate's models, for the training-step benchmark.

Each twin has the same module names and parameter shapes as the striate model
it mirrors (``striate.models`` follows torchvision's names), so that
``twin.load_state_dict(striate_state, strict=True)`` both copies the weights and
proves that the two networks have the same layers. ``bench_train.py``
additionally checks that twin and model give the same eval-mode output before
timing anything.

torchvision is not a dependency: ResNet is written out here in torchvision's
layout (BasicBlock only: ResNet-18/34).
"""
from __future__ import annotations

import numpy as np


def copy_weights(model, twin):
    """Loads striate ``model``'s parameters and buffers into the PyTorch ``twin`` (strict names)."""
    import torch

    state = {k: torch.from_numpy(np.array(v.numpy(), copy=True)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def lenet5(nn, model):
    """striate.models.LeNet5's layers (``features``, ``classifier``) with its channel counts."""
    c1 = model.features[0].weight.shape[0]
    c2 = model.features[3].weight.shape[0]
    in_channels = model.features[0].weight.shape[1]
    classes = model.classifier[-1].weight.shape[0]

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(in_channels, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(c2 * 25, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                nn.Linear(84, classes))

        def forward(self, x):
            return self.classifier(self.features(x))

    return LeNet5()


def bn_cnn(nn):
    """A conv-BN-ReLU-pool CNN with dropout for 3x32x32 inputs, built from either library's ``nn``."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 16, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def resnet(nn, layers, num_classes):
    """torchvision's ResNet with BasicBlock (ResNet-18: layers [2, 2, 2, 2])."""

    class BasicBlock(nn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], 2)
            self.layer3 = self._make_layer(256, layers[2], 2)
            self.layer4 = self._make_layer(512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            out = [BasicBlock(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            out += [BasicBlock(planes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*out)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def unet(nn, torch, in_channels, num_classes, depth, base, batch_norm):
    """striate.models.UNet with padded convs (``valid=False``): same names, same concatenation order."""

    def double_conv(c_in, c_out):
        out = []
        for c in (c_in, c_out):
            out.append(nn.Conv2d(c, c_out, 3, padding=1))
            if batch_norm:
                out.append(nn.BatchNorm2d(c_out))
            out.append(nn.ReLU())
        return nn.Sequential(*out)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            channels = [base * 2 ** i for i in range(depth + 1)]
            self.down = nn.ModuleList([double_conv(a, b) for a, b in
                                       zip([in_channels] + channels[:depth - 1], channels[:depth])])
            self.pool = nn.MaxPool2d(2)
            self.bottleneck = double_conv(channels[depth - 1], channels[depth])
            rising = channels[::-1]
            self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in rising[:-1]])
            self.decode = nn.ModuleList([double_conv(c, c // 2) for c in rising[:-1]])
            self.classifier = nn.Conv2d(base, num_classes, 1)

        def forward(self, x):
            skips = []
            for block in self.down:
                x = block(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            for up, block, skip in zip(self.up, self.decode, skips[::-1]):
                x = block(torch.cat([skip, up(x)], dim=1))
            return self.classifier(x)

    return UNet()


def dcgan(nn, z_dim, channels, size, base):
    """striate.models.DCGenerator and DCDiscriminator (unconditional): ``net`` Sequentials."""
    start, doublings = size, 0
    while start % 2 == 0 and start >= 8:
        start, doublings = start // 2, doublings + 1

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            c = base * 2 ** (doublings - 1)
            layers = [nn.ConvTranspose2d(z_dim, c, start, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            for _ in range(doublings - 1):
                layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2),
                           nn.ReLU()]
                c //= 2
            layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
            self.net = nn.Sequential(*layers)

        def forward(self, z):
            return self.net(z.reshape(z.shape[0], -1, 1, 1))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            c = base
            layers = [nn.Conv2d(channels, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            for _ in range(doublings - 1):
                layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2)]
                c *= 2
            layers.append(nn.Conv2d(c, 1, start))
            self.net = nn.Sequential(*layers)

        def forward(self, x):
            return self.net(x).reshape(-1)

    return Generator(), Discriminator()
