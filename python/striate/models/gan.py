"""GAN generators and discriminators: multilayer perceptrons, DCGAN, and image-conditioned pairs.

Conventions shared by every model here (and relied on by :func:`striate.train.fit_gan`):

* a generator has attributes ``z_dim`` and ``conditional`` and is called ``G(z)``
  or, when conditional, ``G(z, y)``; ``z`` is (N, z_dim) noise, usually N(0, 1);
  it ends in ``tanh``, so images come out in [-1, 1];
* a discriminator is called ``D(x)`` or ``D(x, y)`` and returns LOGITS of shape
  (N,); ``sigmoid(D(x))`` is the probability that x is real. It expects images
  in [-1, 1], the generator's range (real data is mapped there first).

Label conditions (``num_classes`` set): ``y`` is (N,) int64 class labels, looked
up in an ``nn.Embedding(num_classes, embed_dim)`` (``embed_dim`` defaults to
``num_classes``). The generator concatenates the embedding to ``z``. The MLP
discriminator concatenates it to the flattened image; the DCGAN discriminator
broadcasts it to ``embed_dim`` constant image planes concatenated to the input
channels. Generator and discriminator have their own embeddings.

Image conditions (:class:`ImageConditionedGenerator` /
:class:`ImageConditionedDiscriminator`): ``y`` is an (N, C, h, w) image in
[-1, 1], e.g. a 14x14 digit to super-resolve to 28x28 (``scale=2``) or, as in
LAPGAN, a coarse image already upsampled to the output size (``scale=1``).
"""
from __future__ import annotations

import math

from .. import nn
from ..nn import functional as F
from ..tensor import cat, ones

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGenerator", "DCDiscriminator",
           "ImageConditionedGenerator", "ImageConditionedDiscriminator", "dcgan_layout"]


def _positive_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def _label_embedding(owner, num_classes, embed_dim):
    """(embedding or None, its width): the lookup table for class labels."""
    if num_classes is None:
        return None, 0
    _positive_int(owner, "num_classes", num_classes)
    embed_dim = num_classes if embed_dim is None else _positive_int(owner, "embed_dim", embed_dim)
    return nn.Embedding(num_classes, embed_dim), embed_dim


def _check_condition(owner, conditional, y):
    if conditional and y is None:
        raise ValueError(f"{owner}: this model is conditional: call it with a condition y")
    if not conditional and y is not None:
        raise ValueError(f"{owner}: this model is unconditional (num_classes=None): call it without y")


def dcgan_layout(size: int) -> tuple[int, int]:
    """(start, doublings) with ``size == start * 2**doublings``: the DCGAN ladder for a square side.

    The side is halved while it stays even and at least 8, so 32 -> (4, 3), 28 -> (7, 2),
    16 -> (4, 2), 64 -> (4, 4). At least one doubling is needed (size 8 or more, even).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8 or size % 2:
        raise ValueError(f"dcgan_layout: size must be an even int of at least 8 (e.g. 16, 28, 32), "
                         f"got {size!r}")
    start, doublings = size, 0
    while start % 2 == 0 and start >= 8:
        start, doublings = start // 2, doublings + 1
    return start, doublings


# ------------------------------------------------------------------ multilayer perceptrons
class MLPGenerator(nn.Module):
    """The GAN paper's fully connected generator: Linear + ReLU per hidden layer, then Linear + tanh.

    Args:
        z_dim: noise length.
        out_shape: the image shape (C, H, W) produced per sample.
        hidden: widths of the hidden layers.
        num_classes: class labels to condition on (None: unconditional).
        embed_dim: label embedding width (default ``num_classes``).

    ``forward(z, y=None)``: (N, z_dim) noise [and (N,) labels] -> (N, *out_shape) in [-1, 1].
    """

    def __init__(self, z_dim: int, out_shape=(1, 28, 28), hidden=(256, 512), num_classes=None, embed_dim=None):
        super().__init__()
        self.z_dim = _positive_int("MLPGenerator", "z_dim", z_dim)
        self.out_shape = tuple(out_shape)
        self.num_classes = num_classes
        self.conditional = num_classes is not None
        self.embed, width = _label_embedding("MLPGenerator", num_classes, embed_dim)
        layers, width = [], z_dim + width
        for h in hidden:
            layers += [nn.Linear(width, _positive_int("MLPGenerator", "hidden", h)), nn.ReLU()]
            width = h
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):
        _check_condition("MLPGenerator", self.conditional, y)
        if self.conditional:
            z = cat([z, self.embed(y)], 1)
        return self.net(z).reshape(z.shape[0], *self.out_shape)


class MLPDiscriminator(nn.Module):
    """The GAN paper's fully connected discriminator: Linear + LeakyReLU(0.2) per hidden layer, then Linear.

    Args:
        in_shape: the image shape (C, H, W).
        hidden: widths of the hidden layers.
        num_classes: class labels to condition on; their embedding is concatenated to the
            flattened image.
        embed_dim: label embedding width (default ``num_classes``).

    ``forward(x, y=None)``: (N, *in_shape) images in [-1, 1] -> (N,) logits.
    """

    def __init__(self, in_shape=(1, 28, 28), hidden=(512, 256), num_classes=None, embed_dim=None):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.num_classes = num_classes
        self.conditional = num_classes is not None
        self.embed, width = _label_embedding("MLPDiscriminator", num_classes, embed_dim)
        layers, width = [], math.prod(self.in_shape) + width
        for h in hidden:
            layers += [nn.Linear(width, _positive_int("MLPDiscriminator", "hidden", h)), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x, y=None):
        _check_condition("MLPDiscriminator", self.conditional, y)
        h = x.reshape(x.shape[0], -1)
        if self.conditional:
            h = cat([h, self.embed(y)], 1)
        return self.net(h).reshape(-1)


# ------------------------------------------------------------------ DCGAN
class DCGenerator(nn.Module):
    """DCGAN generator: transposed convolutions with BatchNorm and ReLU, tanh at the end.

    For ``size = start * 2**n`` (see :func:`dcgan_layout`), with c = base * 2**(n-1)::

        z (N, z_dim [+ embed_dim], 1, 1)
        net.0  ConvTranspose2d(k=start)        -> (N, c, start, start), BN, ReLU
        ...    ConvTranspose2d(k4, s2, p1)     -> channels halve, side doubles, BN, ReLU
        last   ConvTranspose2d(k4, s2, p1)     -> (N, out_channels, size, size), tanh

    Args:
        z_dim: noise length.
        out_channels: image channels.
        size: image side (e.g. 16, 28, 32, 64).
        base: channels of the last hidden layer.
        num_classes, embed_dim: label conditioning (embedding concatenated to z).
    """

    def __init__(self, z_dim: int, out_channels: int = 1, size: int = 28, base: int = 64, num_classes=None,
                 embed_dim=None):
        super().__init__()
        self.z_dim = _positive_int("DCGenerator", "z_dim", z_dim)
        self.num_classes, self.size = num_classes, size
        self.conditional = num_classes is not None
        self.embed, width = _label_embedding("DCGenerator", num_classes, embed_dim)
        start, doublings = dcgan_layout(size)
        channels = base * 2 ** (doublings - 1)
        layers = [nn.ConvTranspose2d(z_dim + width, channels, start, bias=False), nn.BatchNorm2d(channels),
                  nn.ReLU()]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(channels, channels // 2, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(channels // 2), nn.ReLU()]
            channels //= 2
        layers += [nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z, y=None):
        _check_condition("DCGenerator", self.conditional, y)
        if self.conditional:
            z = cat([z, self.embed(y)], 1)
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class DCDiscriminator(nn.Module):
    """DCGAN discriminator: strided convolutions with LeakyReLU(0.2); BatchNorm on all but the first.

    The mirror of :class:`DCGenerator`::

        x (N, in_channels [+ embed_dim], size, size)
        net.0  Conv2d(k4, s2, p1) -> (N, base, size/2, size/2), LeakyReLU (no BN)
        ...    Conv2d(k4, s2, p1) -> channels double, side halves, BN, LeakyReLU
        last   Conv2d(k=start)    -> (N, 1, 1, 1) -> (N,) logits

    Args:
        in_channels: image channels.
        size: image side.
        base: channels of the first layer.
        num_classes, embed_dim: label conditioning: the label embedding is broadcast to
            ``embed_dim`` constant planes concatenated to the input channels.
    """

    def __init__(self, in_channels: int = 1, size: int = 28, base: int = 64, num_classes=None, embed_dim=None):
        super().__init__()
        self.num_classes, self.size = num_classes, size
        self.conditional = num_classes is not None
        self.embed, width = _label_embedding("DCDiscriminator", num_classes, embed_dim)
        start, doublings = dcgan_layout(size)
        channels = base
        layers = [nn.Conv2d(in_channels + width, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(doublings - 1):
            layers += [nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(channels * 2), nn.LeakyReLU(0.2)]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, start))
        self.net = nn.Sequential(*layers)

    def forward(self, x, y=None):
        _check_condition("DCDiscriminator", self.conditional, y)
        if self.conditional:
            planes = self.embed(y)
            planes = planes.reshape(*planes.shape, 1, 1) * ones(1, 1, *x.shape[2:], device=x.device)
            x = cat([x, planes], 1)
        return self.net(x).reshape(-1)


# ------------------------------------------------------------------ image conditions
def _upsample_to(y, shape):
    """y resized (bilinear) to the spatial shape, or y itself when it already has it."""
    if tuple(y.shape[2:]) == tuple(shape):
        return y
    return F.interpolate(y, size=tuple(shape), mode="bilinear")


def _conv_bn(c_in, c_out, activation, **conv):
    return [nn.Conv2d(c_in, c_out, bias=False, **conv), nn.BatchNorm2d(c_out), activation]


class ImageConditionedGenerator(nn.Module):
    """G(z, y) for an image condition y: a fully convolutional net on [upsample(y), noise].

    ``y`` (N, in_channels, h, w) is upsampled (bilinear) to (H, W) = (h * scale, w * scale);
    with ``scale=1`` it is used as is (LAPGAN: y is the already upsampled coarse image). The
    noise enters as extra channels: without ``size``, z (N, z_dim) is broadcast to z_dim
    constant planes (any image size works); with ``size`` (the output side H = W), a Linear
    layer maps z to one noise plane of H x W, as in LAPGAN. Then::

        net  Conv3x3 + BN + ReLU, (depth - 2) x [Conv3x3 + BN + ReLU], Conv3x3 -> h, tanh(h)

    Returns tanh(h) in [-1, 1], or with ``residual=True`` ``upsample(y) + tanh(h)`` (y's
    range widened by the correction, [-2, 2] at most: LAPGAN's sum of a coarse image and a
    band-pass detail).

    Args:
        z_dim: noise length.
        in_channels: channels of y.
        out_channels: channels of the output (default in_channels).
        scale: integer upsampling factor from y to the output.
        base: hidden channels.
        depth: convolutions (at least 2).
        size: output side for the noise-plane mode (see above), or None.
        residual: return upsample(y) + tanh(h) (needs out_channels == in_channels).
    """

    def __init__(self, z_dim: int, in_channels: int = 1, out_channels=None, scale: int = 2, base: int = 64,
                 depth: int = 3, size=None, residual: bool = False):
        super().__init__()
        owner = "ImageConditionedGenerator"
        self.z_dim = _positive_int(owner, "z_dim", z_dim)
        self.in_channels = _positive_int(owner, "in_channels", in_channels)
        self.out_channels = in_channels if out_channels is None else _positive_int(owner, "out_channels",
                                                                                   out_channels)
        self.scale = _positive_int(owner, "scale", scale)
        if _positive_int(owner, "depth", depth) < 2:
            raise ValueError(f"{owner}: depth must be at least 2, got {depth}")
        if residual and self.out_channels != self.in_channels:
            raise ValueError(f"{owner}: residual=True needs out_channels ({self.out_channels}) equal to "
                             f"in_channels ({self.in_channels})")
        self.residual, self.size, self.conditional = bool(residual), size, True
        if size is None:
            self.noise, noise_channels = None, z_dim
        else:
            self.noise, noise_channels = nn.Linear(z_dim, _positive_int(owner, "size", size) ** 2), 1
        layers = _conv_bn(in_channels + noise_channels, base, nn.ReLU(), kernel_size=3, padding=1)
        for _ in range(depth - 2):
            layers += _conv_bn(base, base, nn.ReLU(), kernel_size=3, padding=1)
        layers.append(nn.Conv2d(base, self.out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z, y):
        n, (h, w) = y.shape[0], y.shape[2:]
        shape = (h * self.scale, w * self.scale)
        if self.size is not None and shape != (self.size, self.size):
            raise ValueError(f"ImageConditionedGenerator: y of {h}x{w} times scale {self.scale} must give "
                             f"the size {self.size} this generator was built for")
        coarse = _upsample_to(y, shape)
        if self.noise is None:
            planes = z.reshape(n, self.z_dim, 1, 1) * ones(1, 1, *shape, device=z.device)
        else:
            planes = self.noise(z).reshape(n, 1, *shape)
        detail = F.tanh(self.net(cat([coarse, planes], 1)))
        return coarse + detail if self.residual else detail


class ImageConditionedDiscriminator(nn.Module):
    """D(x, y) for an image condition: y upsampled (bilinear) to x's size and concatenated as channels.

    ::

        net   Conv4x4 s2 + LeakyReLU(0.2) (no BN), (depth - 1) x [Conv4x4 s2 + BN + LeakyReLU],
              Conv3x3 -> (N, 1, h, w) patch logits
        out   their mean over the patches -> (N,)

    Any x size of at least 2**depth works.

    Args:
        in_channels: channels of x.
        cond_channels: channels of y (default in_channels).
        base: channels of the first layer (doubling per layer).
        depth: strided convolutions.
    """

    def __init__(self, in_channels: int = 1, cond_channels=None, base: int = 64, depth: int = 2):
        super().__init__()
        owner = "ImageConditionedDiscriminator"
        cond_channels = in_channels if cond_channels is None else cond_channels
        _positive_int(owner, "cond_channels", cond_channels)
        _positive_int(owner, "depth", depth)
        self.conditional = True
        channels = base
        layers = [nn.Conv2d(_positive_int(owner, "in_channels", in_channels) + cond_channels, channels, 4,
                            stride=2, padding=1), nn.LeakyReLU(0.2)]
        for _ in range(depth - 1):
            layers += _conv_bn(channels, channels * 2, nn.LeakyReLU(0.2), kernel_size=4, stride=2, padding=1)
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x, y):
        patches = self.net(cat([x, _upsample_to(y, x.shape[2:])], 1))
        return patches.reshape(x.shape[0], -1).mean(1)
