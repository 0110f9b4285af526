"""LAPGAN (Denton et al., 2015): a Laplacian pyramid of GANs, sampled coarse to fine.

Pyramid (level 0 is the finest; ``d`` = ``F.pyr_down``, ``u`` = ``F.pyr_up`` to the finer
level's exact size, so odd sides work: 28 -> 14 -> 7)::

    I_0 = I,  I_{k+1} = d(I_k),  h_k = I_k - u(I_{k+1}),  the top level I_{L-1} kept as is.

Models, one generator/discriminator pair per level, trained independently:

- the coarsest level L-1 is a plain GAN on I_{L-1}: ``MLPGenerator`` / ``MLPDiscriminator``
  (``coarse="mlp"``, the paper's choice for small tops) or ``DCGenerator`` /
  ``DCDiscriminator`` (``coarse="dcgan"``, for an even top side of 8 or more, e.g. the
  14x14 top of a 2-level pyramid on 28x28 digits);
- a finer level k has a conditional generator G_k(z_k, y) = y + h~_k with y = u(I_{k+1}):
  an ``ImageConditionedGenerator`` (scale 1, residual) whose noise z_k enters as one extra
  channel plane (a Linear from ``level_z_dim`` to the k-th side squared), h~_k = tanh(net);
  its discriminator ``DetailDiscriminator`` judges the detail h = x - y given y.

So at level k a real pair is (I_k, u(I_{k+1})) and a fake one is (y + h~_k, y): both
follow :func:`striate.train.fit_gan`'s convention of G(z, y), D(x, y) with logits (N,).
Images are in [-1, 1] throughout (``tanh`` range); sampled finer levels may leave it by the
size of the detail, as real Laplacian sums do.

Training data per level come from :func:`level_data`; ``striate.train.fit_lapgan`` trains
every level with :func:`striate.train.fit_gan` (``out/level<k>`` holds each level's figures
and resumable checkpoint) and ``LAPGAN.sample`` runs I_{L-1} = G_{L-1}(z), I_k = u(I_{k+1}) + h~_k.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor, randn, tensor
from .gan import (DCDiscriminator, DCGenerator, ImageConditionedDiscriminator, ImageConditionedGenerator,
                  MLPDiscriminator, MLPGenerator)

__all__ = ["LAPGAN", "DetailDiscriminator", "level_data", "pyramid_sizes"]


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"LAPGAN: {name} must be an int >= {low}, got {value!r}")
    return int(value)


def pyramid_sizes(size: int, levels: int) -> list:
    """Sides of the Gaussian pyramid, finest first: ``pyramid_sizes(28, 3) == [28, 14, 7]``."""
    sizes = [_check_int("size", size, 1)]
    for _ in range(_check_int("levels", levels, 1) - 1):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def level_data(images: Tensor, level: int, levels: int):
    """The training tensors of one pyramid level.

    Args:
        images: (N, C, H, W) images in [-1, 1] (Tensor or array).
        level: 0 (finest) .. levels - 1 (coarsest).
        levels: the number of pyramid levels.

    Returns:
        ``(I_level, u(I_{level+1}))`` for a fine level, so that ``x - y`` is the Laplacian
        coefficient h_level; ``(I_{levels-1}, None)`` for the coarsest one. No gradients.
    """
    levels = _check_int("levels", levels, 1)
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or not 0 <= level < levels:
        raise ValueError(f"level_data: level must be an int in [0, {levels}), got {level!r}")
    images = images if isinstance(images, Tensor) else tensor(np.asarray(images, np.float32))
    if images.ndim != 4:
        raise ValueError(f"level_data: images must be (N, C, H, W), got shape {images.shape}")
    coarsest = level == levels - 1
    with no_grad():
        gaussian = F.gaussian_pyramid(images, level + 1 if coarsest else level + 2)
        if coarsest:
            return gaussian[level], None
        return gaussian[level], F.pyr_up(gaussian[level + 1], output_size=tuple(gaussian[level].shape[2:]))


class DetailDiscriminator(nn.Module):
    """D(x, y) = judge(h = x - y, y): LAPGAN's discriminator of a band-pass detail given the coarse image.

    ``judge`` is an :class:`ImageConditionedDiscriminator` on [h, y] (patch logits averaged
    to (N,)).

    Args:
        channels: image channels. base: channels of the first conv. depth: strided convs.
    """

    conditional = True

    def __init__(self, channels: int = 1, base: int = 32, depth: int = 2):
        super().__init__()
        self.judge = ImageConditionedDiscriminator(channels, channels, base=base, depth=depth)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape:
            raise ValueError(f"DetailDiscriminator: x and y must have the same shape, got {x.shape} and {y.shape}")
        return self.judge(x - y, y)


class LAPGAN(nn.Module):
    """A pyramid of GANs: ``generators[k]`` / ``discriminators[k]`` for level k (0 finest).

    Args:
        levels: pyramid levels (>= 1; 1 is a plain GAN).
        channels: image channels. size: side of the finest (square) images.
        z_dim: noise size of the coarsest, plain GAN. hidden: its MLPs' hidden widths.
        coarse: the coarsest level's networks, ``"mlp"`` or ``"dcgan"``.
        coarse_base: the DCGAN networks' base width (``coarse="dcgan"``).
        level_z_dim: noise size of each finer level (mapped to one noise plane).
        base, depth: hidden channels and conv count of the finer generators.
        d_base, d_depth: first-layer channels and strided convs of the finer discriminators.
    """

    def __init__(self, levels: int = 3, channels: int = 1, size: int = 28, z_dim: int = 32, hidden=(256, 256),
                 level_z_dim: int = 32, base: int = 32, depth: int = 3, d_base: int = 32, d_depth: int = 2,
                 coarse: str = "mlp", coarse_base: int = 32):
        super().__init__()
        if coarse not in ("mlp", "dcgan"):
            raise ValueError(f"LAPGAN: coarse must be 'mlp' or 'dcgan', got {coarse!r}")
        self.sizes = pyramid_sizes(size, levels)
        self.levels, self.channels = len(self.sizes), _check_int("channels", channels, 1)
        for k, side in enumerate(self.sizes[:-1]):
            if side < 2 ** d_depth:
                raise ValueError(f"LAPGAN: level {k} is {side}x{side}, smaller than the 2**d_depth = "
                                 f"{2 ** d_depth} its discriminator needs")
        top = (self.channels, self.sizes[-1], self.sizes[-1])
        if coarse == "mlp":
            top_g, top_d = MLPGenerator(z_dim, top, hidden=hidden), MLPDiscriminator(top, hidden=hidden)
        else:
            top_g = DCGenerator(z_dim, self.channels, top[1], base=coarse_base)
            top_d = DCDiscriminator(self.channels, top[1], base=coarse_base)
        self.generators = nn.ModuleList(
            [ImageConditionedGenerator(level_z_dim, self.channels, scale=1, base=base, depth=depth, size=side,
                                       residual=True) for side in self.sizes[:-1]] + [top_g])
        self.discriminators = nn.ModuleList(
            [DetailDiscriminator(self.channels, d_base, d_depth) for _ in self.sizes[:-1]] + [top_d])

    def level_data(self, images: Tensor, level: int):
        """:func:`level_data` for this pyramid; checks the images' shape."""
        expected = (self.channels, self.sizes[0], self.sizes[0])
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"LAPGAN: images must be (N, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got shape {images.shape}")
        return level_data(images, level, self.levels)

    def sample(self, n: int, z=None, return_levels: bool = False):
        """Draw n images coarse to fine, in eval mode and without gradients.

        Args:
            n: number of images.
            z: optional list of per-level noise, ``z[k]`` of shape (n, generators[k].z_dim);
                by default ``striate.randn``.
            return_levels: also return every level's image.

        Returns:
            (n, C, size, size) images I_0, or the list [I_0, ..., I_{L-1}] with ``return_levels``.
        """
        n = _check_int("n", n, 1)
        device = next((p.device for p in self.parameters()), "cpu")
        if z is not None and len(z) != self.levels:
            raise ValueError(f"LAPGAN.sample: z must hold {self.levels} per-level noise tensors, got {len(z)}")
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                images = [None] * self.levels
                for k in reversed(range(self.levels)):
                    g = self.generators[k]
                    noise = z[k] if z is not None else randn(n, g.z_dim, device=device)
                    if k == self.levels - 1:
                        images[k] = g(noise)
                    else:
                        side = self.sizes[k]
                        images[k] = g(noise, F.pyr_up(images[k + 1], output_size=(side, side)))
        finally:
            self.train(was_training)
        return images if return_levels else images[0]
