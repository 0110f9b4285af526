"""StackGAN (Zhang et al., 2017), text to image in two stages, sized for a CPU (16 -> 32 pixels).

- ``ConditioningAugmentation``: a Linear maps the text embedding phi to (mu, logvar);
  c_hat = mu + exp(logvar / 2) * eps, eps ~ N(0, I) drawn with ``striate.randn`` (the
  global generator, so seeded runs repeat). The regulariser r = KL(N(mu, diag exp(logvar))
  || N(0, I)) is ``F.kl_normal(mu, logvar)`` with its default "batchmean" reduction: summed
  over the c_dim axis, averaged over the batch (the KL per sample, as in the paper).
  ``kl_reduction="mean"`` averages over the c_dim axis too, as the authors' code does
  (there with lam = 2): 1/c_dim as strong, which keeps more text information in c_hat.
- Stage I: ``StageIGenerator`` G0(z, phi) -> (16x16 tanh image, mu, logvar);
  ``StageIDiscriminator`` D0(I, phi) -> logits (N,).
- Stage II: ``StageIIGenerator`` G(s0, phi) encodes the stage-I image s0, joins the
  spatially replicated c_hat, runs residual blocks and upsamples to twice s0's side;
  ``StageIIDiscriminator`` D(I, phi) at 32x32.
- Discriminators downsample the image to 4x4 features (strided 4x4 convs, or with ``pool``
  3x3 convs + max-pooling), concatenate a compressed phi
  replicated over those 4x4 positions, and end in a 1x1 conv + a 4x4 conv to one logit.

Losses (``discriminator_loss``, ``generator_loss``), written with BCE-with-logits,
D(.) = sigmoid(logit):

    L_D = -(mean log D(I, phi) + mean log(1 - D(G(.), phi)))
    L_G = mean log(1 - D(G(.), phi)) + lam * r            (g_loss="minimax", the paper's)
    L_G = -mean log D(G(.), phi) + lam * r                (g_loss="nonsaturating", default)

With ``mismatch=True`` D also sees real images with the wrong caption (phi rolled by
one within the batch) as fakes, weighted as in the authors' code:
L_D = BCE(real, 1) + (BCE(fake, 0) + BCE(wrong, 0)) / 2. It is off by default.

An addition that is not in the seed, off by default (``word_weight=0`` trains the losses
above exactly): the auxiliary-classifier idea of AC-GAN (Odena et al., 2017) applied to the
caption's words. A discriminator built with ``words=V`` also returns V word logits read
from the image alone (no caption input), and with ``word_weight = w > 0``

    L_D += w * BCE_sum(words(I_real), y)     L_G += w * BCE_sum(words(G(.)), y)

where y is the caption's multi-hot word vector (:func:`striate.text.word_presence`) and
BCE_sum sums over the vocabulary and averages over the batch: D learns to name the
words of real images, and G to draw images whose words D can name.

By default the word logits come from a head on D's real/fake trunk. With
``word_classifier=True`` they come from a separate ``WordClassifier`` inside D
(a small conv net, ``striate.models.attributes.conv_trunk`` + Linear). Its parameters
train with D's optimizer, on real images only. ``fit_stackgan(..., word_warmup=E)`` first
trains D's word path alone for E epochs. That is supervised training on the real
caption-image pairs: Adam at ``warmup_lr`` with a cosine schedule, and Gaussian pixel
noise of std ``warmup_noise`` added as augmentation. The GAN then starts with a D that can
already name the words. With ``word_freeze=True`` the classifier then stays fixed, in eval
mode, as a pretrained judge of G's words (like AttnGAN's pretrained text-image matcher), and
L_D has no word term. On Shapes this is what makes G draw the captioned shape kind:
D's own trunk, at D's learning rate, learns to tell ellipses, rectangles and triangles
too slowly for the training budget (README, GAN section).

``fit_stackgan`` trains one stage (Adam, one D step then one G step per batch) and
writes, under ``out``, per-epoch sample grids from a fixed z and fixed captions,
``losses.json`` / ``losses.png`` and a resumable checkpoint ``last.safetensors``::

    {"epoch": int, "G": state_dict, "D": state_dict, "opt_g": ..., "opt_d": ...,
     "rng": striate.get_rng_state(), "loader": loader.state_dict() or None,
     "history": {column: [per-epoch values]}, "meta": {"stage": 1 or 2}}

Resumption is bit-exact as in :func:`striate.train.fit`: all randomness (z, eps, data
order) comes from striate's global state, saved at each epoch boundary; the fixed
sample z comes from its own ``numpy.random.default_rng(sample_seed)``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import namedtuple

import numpy as np

from .. import nn
from .. import random as st_random
from ..autograd import no_grad
from ..nn import functional as F
from ..optim import Adam
from ..serialization import load, save
from ..tensor import Tensor, cat, ones, randn, tensor, zeros
from ..train.plots import _draw_panel, _pil, save_image_grid
from .attributes import conv_trunk

__all__ = ["ConditioningAugmentation", "WordClassifier", "StageIGenerator", "StageIDiscriminator", "StageIIGenerator",
           "StageIIDiscriminator", "discriminator_loss", "generator_loss", "stackgan_sample",
           "ShapesText", "shapes_text_data", "fit_stackgan", "G_LOSSES",
           "CHECKPOINT_NAME", "HISTORY_COLUMNS"]

G_LOSSES = ("minimax", "nonsaturating")
CHECKPOINT_NAME = "last.safetensors"
HISTORY_COLUMNS = ("epoch", "loss_d", "loss_g", "kl", "d_real", "d_fake", "words_real", "words_fake",
                   "epoch_time")


def _check_int(owner: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{owner}: {name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_side(owner: str, size, low: int) -> int:
    """A side of the form low * 2**k (the convs halve or double it exactly)."""
    size = _check_int(owner, "size", size, low)
    if size & (size - 1):
        raise ValueError(f"{owner}: size must be a power of two >= {low}, got {size}")
    return size


def _replicate(v: Tensor, height: int, width: int) -> Tensor:
    """(N, C) -> (N, C, height, width), each vector copied to every position (gradient sums back)."""
    return v.reshape(v.shape[0], v.shape[1], 1, 1) * ones(1, 1, height, width, device=v.device)


class ConditioningAugmentation(nn.Module):
    """phi (N, embed_dim) -> (c_hat, mu, logvar), each (N, c_dim).

    Args:
        embed_dim: size of the text embedding phi. c_dim: size of the conditioning code.
    """

    def __init__(self, embed_dim: int, c_dim: int):
        super().__init__()
        self.embed_dim = _check_int("ConditioningAugmentation", "embed_dim", embed_dim, 1)
        self.c_dim = _check_int("ConditioningAugmentation", "c_dim", c_dim, 1)
        self.fc = nn.Linear(self.embed_dim, 2 * self.c_dim)

    def forward(self, phi: Tensor, eps: Tensor = None):
        """eps: optional (N, c_dim) standard-normal draw; by default ``striate.randn``."""
        if phi.ndim != 2 or phi.shape[1] != self.embed_dim:
            raise ValueError(f"ConditioningAugmentation: phi must be (N, {self.embed_dim}), got {phi.shape}")
        h = self.fc(phi)
        mu, logvar = h[:, :self.c_dim], h[:, self.c_dim:]
        if eps is None:
            eps = randn(phi.shape[0], self.c_dim, device=phi.device)
        return mu + (logvar * 0.5).exp() * eps, mu, logvar


def _up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Double the side: ConvTranspose2d(k=4, s=2, p=1) + BatchNorm + ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


def _down_block(in_channels: int, out_channels: int, norm: bool = True, pool: bool = False) -> nn.Sequential:
    """Halve the side: Conv2d(k=4, s=2, p=1) (+ BatchNorm) + LeakyReLU(0.2); with ``pool``,
    Conv2d(k=3, s=1, p=1) (+ BatchNorm) + LeakyReLU(0.2) + MaxPool2d(2) instead."""
    conv = (nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=not norm) if pool
            else nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm))
    layers = [conv]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class StageIGenerator(nn.Module):
    """G0(z, phi) -> (image (N, 3, size, size) in [-1, 1], mu, logvar).

    [z, c_hat] -> Linear -> (ngf * 2**k, 4, 4) -> k up blocks (4 -> size) -> conv3x3 -> tanh.

    Args:
        z_dim: noise size. embed_dim: text embedding size. c_dim: conditioning code size.
        size: output side, a power of two >= 8. ngf: channels of the last up block.
    """

    conditional = True

    def __init__(self, z_dim: int, embed_dim: int, c_dim: int, size: int = 16, ngf: int = 32):
        super().__init__()
        self.z_dim = _check_int("StageIGenerator", "z_dim", z_dim, 1)
        self.size = _check_side("StageIGenerator", size, 8)
        ngf = _check_int("StageIGenerator", "ngf", ngf, 1)
        self.ca = ConditioningAugmentation(embed_dim, c_dim)
        steps = int(np.log2(self.size // 4))
        self.base_channels = ngf * 2 ** steps
        self.fc = nn.Sequential(nn.Linear(self.z_dim + c_dim, self.base_channels * 16, bias=False),
                                nn.BatchNorm1d(self.base_channels * 16), nn.ReLU())
        self.up = nn.Sequential(*[_up_block(ngf * 2 ** (steps - i), ngf * 2 ** (steps - i - 1))
                                  for i in range(steps)])
        self.to_image = nn.Conv2d(ngf, 3, 3, padding=1)

    def forward(self, z: Tensor, phi: Tensor):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"StageIGenerator: z must be (N, {self.z_dim}), got {z.shape}")
        c_hat, mu, logvar = self.ca(phi)
        h = self.fc(cat([z, c_hat], 1)).reshape(z.shape[0], self.base_channels, 4, 4)
        return F.tanh(self.to_image(self.up(h))), mu, logvar


class _ResidualBlock(nn.Module):
    """x + (conv3x3 BN ReLU conv3x3 BN)(x), then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x):
        return F.relu(x + self.body(x))


class StageIIGenerator(nn.Module):
    """G(s0, phi) -> (image (N, 3, 2S, 2S) in [-1, 1], mu, logvar) for a stage-I image s0 (N, 3, S, S).

    s0 -> conv3x3 ReLU -> down block (S/2) ; concat c_hat replicated over S/2 x S/2 ->
    conv3x3 BN ReLU -> ``n_res`` residual blocks -> 2 up blocks (S/2 -> 2S) -> conv3x3 -> tanh.

    Args:
        embed_dim: text embedding size. c_dim: conditioning code size (its own CA).
        ngf: channels after the first conv. n_res: residual blocks.
    """

    conditional = True
    z_dim = None

    def __init__(self, embed_dim: int, c_dim: int, ngf: int = 32, n_res: int = 2):
        super().__init__()
        ngf = _check_int("StageIIGenerator", "ngf", ngf, 1)
        n_res = _check_int("StageIIGenerator", "n_res", n_res, 0)
        self.ca = ConditioningAugmentation(embed_dim, c_dim)
        self.encode = nn.Sequential(nn.Conv2d(3, ngf, 3, padding=1), nn.ReLU(),
                                    nn.Conv2d(ngf, 2 * ngf, 4, 2, 1, bias=False),
                                    nn.BatchNorm2d(2 * ngf), nn.ReLU())
        self.join = nn.Sequential(nn.Conv2d(2 * ngf + c_dim, 2 * ngf, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(2 * ngf), nn.ReLU())
        self.residual = nn.Sequential(*[_ResidualBlock(2 * ngf) for _ in range(n_res)])
        self.up = nn.Sequential(_up_block(2 * ngf, ngf), _up_block(ngf, ngf // 2 or 1))
        self.to_image = nn.Conv2d(ngf // 2 or 1, 3, 3, padding=1)

    def forward(self, s0: Tensor, phi: Tensor):
        if s0.ndim != 4 or s0.shape[1] != 3 or s0.shape[2] % 2 or s0.shape[3] % 2:
            raise ValueError(f"StageIIGenerator: s0 must be (N, 3, H, W) with even H and W, got {s0.shape}")
        c_hat, mu, logvar = self.ca(phi)
        h = self.encode(s0)
        h = self.join(cat([h, _replicate(c_hat, h.shape[2], h.shape[3])], 1))
        return F.tanh(self.to_image(self.up(self.residual(h)))), mu, logvar


class WordClassifier(nn.Module):
    """Caption-word logits from an image alone: (N, 3, H, W) -> (N, words), H and W multiples of 4.

    ``conv_trunk(width)`` then one Linear; ``_ConditionalDiscriminator(word_classifier=True)``
    holds one. Args: words: vocabulary size. width: channels of the first convs.
    """

    def __init__(self, words: int, width: int = 32):
        super().__init__()
        self.words = _check_int("WordClassifier", "words", words, 1)
        width = _check_int("WordClassifier", "width", width, 1)
        self.features = conv_trunk(width)
        self.head = nn.Linear(2 * width, self.words)

    def forward(self, image: Tensor) -> Tensor:
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] % 4 or image.shape[3] % 4:
            raise ValueError(f"WordClassifier: image must be (N, 3, H, W) with H and W multiples of 4, "
                             f"got {image.shape}")
        return self.head(self.features(image))


class _ConditionalDiscriminator(nn.Module):
    """D(I, phi) -> logits (N,): image down to 4x4 features, joined with a replicated compressed phi.

    With ``text_planes > 0`` a second compressed phi (``early``, Linear + LeakyReLU) is also
    replicated over the input and concatenated to the image's channels, so per-pixel
    properties the caption names (colour) can be matched from the first layer on. Without
    it, on the Shapes captions, D matched text and image so weakly that G learnt to ignore
    the caption.
    """

    def __init__(self, owner: str, embed_dim: int, size: int, ndf: int, m_dim: int, text_planes: int = 0,
                 words: int = 0, pool: bool = False, word_classifier: bool = False):
        super().__init__()
        self.size = _check_side(owner, size, 8)
        self.embed_dim = _check_int(owner, "embed_dim", embed_dim, 1)
        ndf, m_dim = _check_int(owner, "ndf", ndf, 1), _check_int(owner, "m_dim", m_dim, 1)
        self.text_planes = _check_int(owner, "text_planes", text_planes, 0)
        self.early = (nn.Sequential(nn.Linear(self.embed_dim, self.text_planes), nn.LeakyReLU(0.2))
                      if self.text_planes else None)
        steps = int(np.log2(self.size // 4))
        self.image = nn.Sequential(*[_down_block(3 + self.text_planes if i == 0 else ndf * 2 ** (i - 1),
                                                 ndf * 2 ** i, norm=i > 0 or pool, pool=pool)
                                     for i in range(steps)])
        features = ndf * 2 ** (steps - 1)
        self.text = nn.Sequential(nn.Linear(self.embed_dim, m_dim), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(nn.Conv2d(features + m_dim, features, 1, bias=False),
                                   nn.BatchNorm2d(features), nn.LeakyReLU(0.2), nn.Conv2d(features, 1, 4))
        self.words = _check_int(owner, "words", words, 0)
        if self.words and self.text_planes:
            raise ValueError(f"{owner}: words > 0 reads the caption's words from the image alone, so it "
                             f"needs text_planes=0, got {self.text_planes}")
        if word_classifier and not self.words:
            raise ValueError(f"{owner}: word_classifier=True needs words > 0")
        # word logits = Linear(4x4 features, flattened: where) + Linear(their mean: what, anywhere),
        # or, with word_classifier, a separate small conv net on the image
        shared = self.words and not word_classifier
        self.word_net = WordClassifier(self.words) if word_classifier else None
        self.word_head = nn.Linear(features * 16, self.words) if shared else None
        self.word_pool = nn.Linear(features, self.words, bias=False) if shared else None
        self.owner = owner

    def forward(self, image: Tensor, phi: Tensor) -> Tensor:
        return self._logits(image, phi)[0]

    def forward_text(self, image: Tensor, phi: Tensor):
        """(logits (N,), word logits (N, words) read from the image alone, or None when words=0)."""
        logits, h = self._logits(image, phi)
        if not self.words:
            return logits, None
        return logits, self._words_of(image, h)

    def word_logits(self, image: Tensor) -> Tensor:
        """Word logits (N, words) of images alone (the word warm-up of ``fit_stackgan``)."""
        if not self.words:
            raise ValueError(f"{self.owner}: word_logits needs a discriminator built with words > 0")
        self._check_image(image)
        return self._words_of(image, None if self.word_net is not None else self.image(image))

    def word_parameters(self) -> list:
        """The parameters the word logits depend on: the word classifier's, or the trunk's and the heads'."""
        if self.word_net is not None:
            return list(self.word_net.parameters())
        if not self.words:
            return []
        return [*self.image.parameters(), *self.word_head.parameters(), *self.word_pool.parameters()]

    def _words_of(self, image: Tensor, h: Tensor) -> Tensor:
        if self.word_net is not None:
            return self.word_net(image)
        return self.word_head(h.reshape(h.shape[0], -1)) + self.word_pool(h.mean((2, 3)))

    def _check_image(self, image: Tensor) -> None:
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"{self.owner}: image must be (N, 3, {self.size}, {self.size}), got {image.shape}")

    def _logits(self, image: Tensor, phi: Tensor):
        """(real/fake logits (N,), the image trunk's 4x4 features)."""
        self._check_image(image)
        if phi.ndim != 2 or phi.shape != (image.shape[0], self.embed_dim):
            raise ValueError(f"{self.owner}: phi must be ({image.shape[0]}, {self.embed_dim}), got {phi.shape}")
        if self.early is not None:
            image = cat([image, _replicate(self.early(phi), self.size, self.size)], 1)
        h = self.image(image)
        logits = self.joint(cat([h, _replicate(self.text(phi), 4, 4)], 1)).reshape(image.shape[0])
        return logits, h


class StageIDiscriminator(_ConditionalDiscriminator):
    """D0(I, phi) -> logits (N,) for (N, 3, size, size) images (size a power of two >= 8).

    Args:
        embed_dim: text embedding size. size: image side. ndf: channels of the first conv.
        m_dim: size of the compressed text code. text_planes: channels of the input-level text
            code (0: the text joins at 4x4 only).
        words: vocabulary size of the auxiliary word head (0: none); see ``forward_text``.
        pool: downsample by 3x3 conv + max-pool instead of strided 4x4 convs (the default);
            on Shapes its word head reads the shape kind better (README, GAN section).
        word_classifier: read the words with a separate ``WordClassifier`` instead of a head
            on the real/fake trunk (module docstring).
    """

    def __init__(self, embed_dim: int, size: int = 16, ndf: int = 32, m_dim: int = 32, text_planes: int = 0,
                 words: int = 0, pool: bool = False, word_classifier: bool = False):
        super().__init__("StageIDiscriminator", embed_dim, size, ndf, m_dim, text_planes, words, pool,
                         word_classifier)


class StageIIDiscriminator(_ConditionalDiscriminator):
    """D(I, phi) -> logits (N,) for stage-II images, by default (N, 3, 32, 32); as StageIDiscriminator."""

    def __init__(self, embed_dim: int, size: int = 32, ndf: int = 32, m_dim: int = 32, text_planes: int = 0,
                 words: int = 0, pool: bool = False, word_classifier: bool = False):
        super().__init__("StageIIDiscriminator", embed_dim, size, ndf, m_dim, text_planes, words, pool,
                         word_classifier)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, wrong_logits: Tensor = None) -> Tensor:
    """L_D = -(mean log D(I, phi) + mean log(1 - D(G(.), phi))), from logits.

    Args:
        real_logits: D on real images with their captions. fake_logits: D on generated images.
        wrong_logits: optional D on real images with mismatched captions; when given,
            the fake and wrong terms are averaged (see the module docstring).
    """
    n = real_logits.shape[0]
    real = F.binary_cross_entropy_with_logits(real_logits, ones(n, device=real_logits.device))
    fake = F.binary_cross_entropy_with_logits(fake_logits, zeros(fake_logits.shape[0], device=fake_logits.device))
    if wrong_logits is None:
        return real + fake
    wrong = F.binary_cross_entropy_with_logits(wrong_logits, zeros(wrong_logits.shape[0],
                                                                   device=wrong_logits.device))
    return real + (fake + wrong) * 0.5


def generator_loss(fake_logits: Tensor, mu: Tensor, logvar: Tensor, lam: float = 1.0,
                   g_loss: str = "nonsaturating", kl_reduction: str = "batchmean"):
    """L_G = adversarial term + lam * KL(N(mu, exp(logvar)) || N(0, I)).

    Args:
        fake_logits: D on generated images with their captions.
        mu, logvar: the conditioning augmentation's outputs.
        lam: weight of the KL regulariser.
        g_loss: "minimax" (mean log(1 - D(G))) or "nonsaturating" (-mean log D(G)).
        kl_reduction: "batchmean" (the KL per sample) or "mean" (per element), see ``F.kl_normal``.

    Returns:
        (loss, kl): the total and the KL term alone.
    """
    if g_loss not in G_LOSSES:
        raise ValueError(f"generator_loss: g_loss must be one of {G_LOSSES}, got {g_loss!r}")
    n = fake_logits.shape[0]
    if g_loss == "minimax":
        adversarial = -F.binary_cross_entropy_with_logits(fake_logits, zeros(n, device=fake_logits.device))
    else:
        adversarial = F.binary_cross_entropy_with_logits(fake_logits, ones(n, device=fake_logits.device))
    if kl_reduction not in ("batchmean", "mean"):
        raise ValueError(f"generator_loss: kl_reduction must be 'batchmean' or 'mean', got {kl_reduction!r}")
    kl = F.kl_normal(mu, logvar, reduction=kl_reduction)
    return adversarial + kl * float(lam), kl


def _word_loss(word_logits: Tensor, words: Tensor) -> Tensor:
    """Binary cross-entropy of the word-presence logits, summed over the vocabulary, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(word_logits, words, reduction="sum") * (1.0 / words.shape[0])


def stackgan_sample(G0, G1, encoder, captions, z: Tensor = None):
    """Images for captions from both stages, in eval mode and without gradients.

    Args:
        G0: a trained StageIGenerator. G1: a StageIIGenerator, or None for stage I only.
        encoder: maps a list of str to (N, embed_dim) embeddings (e.g. ``HashingTextEncoder``).
        captions: list of str.
        z: optional (N, z_dim) noise; by default ``striate.randn``.

    Returns:
        (stage-I images (N, 3, S, S), stage-II images (N, 3, 2S, 2S) or None), in [-1, 1].
    """
    phi = encoder.encode(list(captions))
    device = next((p.device for p in G0.parameters()), "cpu")
    phi = phi.to(device) if phi.device != device else phi
    if z is None:
        z = randn(len(captions), G0.z_dim, device=device)
    return _generate(G0, G1, phi, z)


def _generate(G0, G1, phi, z):
    """(s0, s1 or None) for embeddings phi and noise z, in eval mode; the modes are restored."""
    modes = [(g, g.training) for g in (G0, G1) if g is not None]
    try:
        for g, _ in modes:
            g.eval()
        with no_grad():
            s0 = G0(z, phi)[0]
            s1 = G1(s0, phi)[0] if G1 is not None else None
    finally:
        for g, mode in modes:
            g.train(mode)
    return s0, s1


ShapesText = namedtuple("ShapesText", ["large", "small", "phi", "captions", "words", "vocabulary"])
ShapesText.__doc__ = """Caption-image pairs: ``large`` (N, 3, S, S) and ``small`` (N, 3, S/2, S/2) images in
[-1, 1] (``small = pyr_down(large)``), ``phi`` (N, embed_dim) caption embeddings, the
``captions`` themselves, and ``words`` (N, V), the multi-hot caption words over ``vocabulary``
(:func:`striate.text.word_presence`). Stage I trains on ``TensorDataset(small, phi)``, stage II
on ``TensorDataset(large, phi)``; with the word term, ``TensorDataset(small, phi, words)`` etc."""


def shapes_text_data(n: int, encoder=None, size: int = 32, max_shapes: int = 1, seed: int = 0,
                     noise: float = 0.04) -> ShapesText:
    """Build StackGAN training pairs from ``striate.data.Shapes`` captions.

    Args:
        n: number of samples. encoder: caption encoder (default ``HashingTextEncoder()``).
        size: side of the large images (stage II); the small ones have half of it.
        max_shapes, seed, noise: passed to ``Shapes``.
    """
    from ..data import Shapes
    from ..text import HashingTextEncoder, word_presence

    if size % 2:
        raise ValueError(f"shapes_text_data: size must be even, got {size}")
    shapes = Shapes(n, size=size, seed=seed, max_shapes=max_shapes, noise=noise)
    encoder = encoder if encoder is not None else HashingTextEncoder()
    large = shapes.get_batch(np.arange(n))[0] * 2.0 - 1.0
    captions = [shapes.caption(i) for i in range(n)]
    words, vocabulary = word_presence(captions)
    return ShapesText(large, F.pyr_down(large), encoder.encode(captions), captions, words, vocabulary)


def _save_history(history: dict, out: str) -> None:
    """losses.json (NaN as null) and losses.png: the two losses, then the KL and D's mean outputs."""
    with open(os.path.join(out, "losses.json"), "w") as f:
        json.dump({k: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
                   for k, values in history.items()}, f, indent=1)
    Image, ImageDraw, font = _pil()
    image = Image.new("RGB", (800, 320), "white")
    draw = ImageDraw.Draw(image)
    epochs = history["epoch"]
    panels = (("losses", [("loss_d", (31, 119, 180)), ("loss_g", (255, 127, 14))]),
              ("KL and D(.)", [("kl", (44, 160, 44)), ("d_real", (31, 119, 180)), ("d_fake", (214, 39, 40))]))
    for i, (title, columns) in enumerate(panels):
        _draw_panel(draw, font, (400 * i, 0, 400 * (i + 1), 320), title,
                    [(name, color, epochs, history[name]) for name, color in columns])
    image.save(os.path.join(out, "losses.png"), format="PNG")


def _fixed_samples(loader, n: int, z_dim: int, sample_seed: int, device: str):
    """(z, phi) for the per-epoch grids: phi of the dataset's first n items, z from a private rng."""
    dataset = getattr(loader, "dataset", None)
    if dataset is None:
        raise ValueError("fit_stackgan: out needs sample_phi, or a loader with a .dataset to take it from")
    n = min(n, len(dataset))
    phi = tensor(np.stack([np.asarray(dataset[i][1].numpy()) for i in range(n)]), device=device)
    z = tensor(np.random.default_rng(sample_seed).standard_normal((n, z_dim)).astype(np.float32), device=device)
    return z, phi


def _stage_fakes(stage, G, G0, z, phi):
    """Generated images (with grad through G) and the CA's (mu, logvar) for one batch."""
    if stage == 1:
        return G(z, phi)
    with no_grad():
        s0 = G0(z, phi)[0]
    return G(s0, phi)


def fit_stackgan(stage, G, D, loader, epochs, z_dim=None, lam=1.0, lr=2e-4, out=None, G0=None,
                 progress=True, resume=False, g_loss="nonsaturating", mismatch=False, betas=(0.5, 0.999),
                 kl_reduction="batchmean", sample_phi=None, n_samples=16, sample_seed=0, word_weight=0.0,
                 word_warmup=0, warmup_loader=None, warmup_lr=2e-3, warmup_noise=0.08, word_freeze=False) -> dict:
    """Train one StackGAN stage; returns the per-epoch history ``{column: [values]}``.

    Args:
        stage: 1 (G = StageIGenerator, D = StageIDiscriminator) or 2 (G = StageIIGenerator on
            the frozen stage-I generator ``G0``, D = StageIIDiscriminator).
        G, D: the stage's generator and discriminator.
        loader: yields ``(images in [-1, 1], phi)`` batches at the stage's resolution, e.g.
            ``DataLoader(TensorDataset(data.small, data.phi), 64, shuffle=True)``.
        epochs: total epochs (with ``resume``, counting those already done).
        z_dim: noise size (default ``G.z_dim`` for stage 1, ``G0.z_dim`` for stage 2).
        lam: weight of the KL regulariser. lr, betas: Adam's, for both networks.
        out: folder for ``samples_epochNNN.png``, ``losses.json``/``.png`` and the checkpoint.
        G0: the trained stage-I generator (stage 2 only); kept in eval mode and not updated.
        progress: print one summary line per epoch (stderr).
        resume: continue from ``out``'s checkpoint when there is one (bit-exactly).
        g_loss: "nonsaturating" (default) or "minimax". mismatch: add the wrong-caption term to L_D.
        kl_reduction: "batchmean" (default, the KL per sample) or "mean" (the authors' code).
        sample_phi: (M, embed_dim) captions for the sample grids (default: the loader dataset's
            first ``n_samples``). sample_seed: seeds the grids' fixed z.
        word_weight: weight of the auxiliary word term (module docstring); > 0 needs D built
            with ``words > 0`` and a loader of ``(images, phi, words)`` batches. History columns
            ``words_real`` / ``words_fake`` record the two word losses (NaN when it is off).
        word_warmup: epochs of supervised training of D's word path alone (``D.word_parameters()``,
            the loss BCE_sum(D.word_logits(images), words)) before the first GAN epoch; skipped
            when resuming from a checkpoint. Needs D built with ``words > 0``.
        warmup_loader: ``(images, phi, words)`` batches for the warm-up (default ``loader``), at
            the stage's resolution; it may hold more caption-image pairs than the GAN's loader.
        warmup_lr: the warm-up's Adam learning rate, decayed by a cosine over the warm-up epochs.
        warmup_noise: std of the Gaussian pixel noise added to warm-up images (augmentation).
        word_freeze: after the warm-up, keep D's ``WordClassifier`` fixed, in eval mode (its batch-norm
            statistics are the real images'), as a pretrained judge of G's words; L_D then has no word
            term and ``words_real`` is NaN. Needs D built with ``word_classifier=True``.
    """
    if stage not in (1, 2):
        raise ValueError(f"fit_stackgan: stage must be 1 or 2, got {stage!r}")
    if stage == 2 and G0 is None:
        raise ValueError("fit_stackgan: stage 2 needs G0, the trained stage-I generator")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit_stackgan: epochs must be a non-negative int, got {epochs!r}")
    if g_loss not in G_LOSSES:
        raise ValueError(f"fit_stackgan: g_loss must be one of {G_LOSSES}, got {g_loss!r}")
    if kl_reduction not in ("batchmean", "mean"):
        raise ValueError(f"fit_stackgan: kl_reduction must be 'batchmean' or 'mean', got {kl_reduction!r}")
    if resume and out is None:
        raise ValueError("fit_stackgan: resume=True needs out")
    if not (isinstance(word_weight, (int, float)) and not isinstance(word_weight, bool) and word_weight >= 0):
        raise ValueError(f"fit_stackgan: word_weight must be a number >= 0, got {word_weight!r}")
    if word_weight and not getattr(D, "words", 0):
        raise ValueError("fit_stackgan: word_weight > 0 needs a discriminator built with words > 0")
    if isinstance(word_warmup, bool) or not isinstance(word_warmup, int) or word_warmup < 0:
        raise ValueError(f"fit_stackgan: word_warmup must be a non-negative int, got {word_warmup!r}")
    if word_warmup and not getattr(D, "words", 0):
        raise ValueError("fit_stackgan: word_warmup > 0 needs a discriminator built with words > 0")
    if word_freeze and (not word_weight or getattr(D, "word_net", None) is None):
        raise ValueError("fit_stackgan: word_freeze needs word_weight > 0 and a discriminator built with "
                         "word_classifier=True")
    for name, value in (("warmup_lr", warmup_lr), ("warmup_noise", warmup_noise)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
            raise ValueError(f"fit_stackgan: {name} must be a number >= 0, got {value!r}")
    z_dim = z_dim if z_dim is not None else (G if stage == 1 else G0).z_dim
    device = next((p.device for p in G.parameters()), "cpu")
    opt_g = Adam(G.parameters(), lr=lr, betas=betas)
    frozen = list(D.word_net.parameters()) if word_freeze else []
    opt_d = Adam([p for p in D.parameters() if not any(p is q for q in frozen)], lr=lr, betas=betas)
    if G0 is not None:
        G0.eval()
    history = {name: [] for name in HISTORY_COLUMNS}
    start, path = 0, None
    if out is not None:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, CHECKPOINT_NAME)
        if sample_phi is None:
            fixed_z, fixed_phi = _fixed_samples(loader, n_samples, z_dim, sample_seed, device)
        else:
            fixed_phi = sample_phi
            fixed_z = tensor(np.random.default_rng(sample_seed).standard_normal(
                (sample_phi.shape[0], z_dim)).astype(np.float32), device=device)
    if resume and os.path.exists(path):
        from ..train.gan import restore_pair

        state = load(path)
        restore_pair(state, G, D, opt_g, opt_d, loader, optimizer_keys=("opt_g", "opt_d"))
        start, history = int(state["epoch"]), {k: list(v) for k, v in state["history"].items()}
    if word_warmup and start == 0 and epochs > 0:
        _word_warmup(stage, D, warmup_loader if warmup_loader is not None else loader, word_warmup, warmup_lr,
                     warmup_noise, device, progress)
    for p in frozen:            # no weight gradients for the fixed classifier; restored below
        p.requires_grad_(False)
    try:
        for epoch in range(start + 1, epochs + 1):
            began = time.perf_counter()
            G.train()
            D.train()
            if word_freeze:
                D.word_net.eval()
            sums, n = dict.fromkeys(HISTORY_COLUMNS[1:-1], 0.0), 0
            for items in loader:
                images, phi, words = items[0], items[1], items[2] if len(items) > 2 else None
                if word_weight and words is None:
                    raise ValueError("fit_stackgan: word_weight > 0 needs a loader of (images, phi, words) batches")
                images = images if isinstance(images, Tensor) else tensor(images)
                phi = phi if isinstance(phi, Tensor) else tensor(phi)
                images, phi = images.to(device), phi.to(device)
                batch = images.shape[0]
                fake, mu, logvar = _stage_fakes(stage, G, G0, randn(batch, z_dim, device=device), phi)
                opt_d.zero_grad()
                # forward_text only with the word term, so any D(image, phi) module trains the seed's losses
                read_real = word_weight and not word_freeze
                real_logits, real_words = D.forward_text(images, phi) if read_real else (D(images, phi), None)
                fake_logits = D(fake.detach(), phi)
                wrong_logits = None
                if mismatch and batch > 1:
                    wrong_logits = D(images, cat([phi[1:], phi[:1]], 0))
                loss_d = discriminator_loss(real_logits, fake_logits, wrong_logits)
                if word_weight:
                    words = (words if isinstance(words, Tensor) else tensor(words)).to(device)
                words_real = _word_loss(real_words, words) if read_real else None
                if read_real:
                    loss_d = loss_d + words_real * word_weight
                loss_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                # frozen: D.word_net is in eval mode and without weight gradients, G still learns through it
                g_logits, fake_words = D.forward_text(fake, phi) if word_weight else (D(fake, phi), None)
                loss_g, kl = generator_loss(g_logits, mu, logvar, lam, g_loss, kl_reduction)
                if word_weight:
                    words_fake = _word_loss(fake_words, words)
                    loss_g = loss_g + words_fake * word_weight
                loss_g.backward()
                opt_g.step()
                text = (("words_real", words_real.item() if read_real else math.nan),
                        ("words_fake", words_fake.item() if word_weight else math.nan))
                for name, value in (("loss_d", loss_d.item()), ("loss_g", loss_g.item()), ("kl", kl.item()),
                                    ("d_real", F.sigmoid(real_logits.detach()).mean().item()),
                                    ("d_fake", F.sigmoid(fake_logits.detach()).mean().item())) + text:
                    sums[name] += float(value) * batch
                n += batch
            history["epoch"].append(epoch)
            for name, total in sums.items():
                history[name].append(total / n if n else math.nan)
            history["epoch_time"].append(time.perf_counter() - began)
            if progress:
                print(f"stackgan stage {stage} epoch {epoch}/{epochs}: " + " ".join(
                    f"{name} {history[name][-1]:.4f}" for name in HISTORY_COLUMNS[1:-1]), file=sys.stderr, flush=True)
            if out is not None:
                save({"epoch": epoch, "G": G.state_dict(), "D": D.state_dict(), "opt_g": opt_g.state_dict(),
                      "opt_d": opt_d.state_dict(), "rng": st_random.get_rng_state(),
                      "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
                      "history": history, "meta": {"stage": stage}}, path)
                _write_epoch_samples(stage, G, G0, fixed_z, fixed_phi,
                                     os.path.join(out, f"samples_epoch{epoch:03d}.png"))
                _save_history(history, out)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return history


def _word_warmup(stage, D, loader, epochs, lr, noise, device, progress) -> None:
    """Train D's word path alone on real (images, phi, words) batches: Adam + cosine decay."""
    from ..optim.lr_scheduler import CosineAnnealingLR

    opt = Adam(D.word_parameters(), lr=lr)
    schedule = CosineAnnealingLR(opt, epochs)
    D.train()
    for epoch in range(1, epochs + 1):
        total, n = 0.0, 0
        for items in loader:
            if len(items) < 3:
                raise ValueError("fit_stackgan: word_warmup needs (images, phi, words) batches")
            images, words = items[0], items[2]
            images = (images if isinstance(images, Tensor) else tensor(images)).to(device)
            words = (words if isinstance(words, Tensor) else tensor(words)).to(device)
            if noise:
                images = images + randn(*images.shape, device=device) * float(noise)
            opt.zero_grad()
            loss = _word_loss(D.word_logits(images), words)
            loss.backward()
            opt.step()
            total += loss.item() * images.shape[0]
            n += images.shape[0]
        schedule.step()
        if progress:
            print(f"stackgan stage {stage} word warm-up {epoch}/{epochs}: words {total / max(n, 1):.4f}",
                  file=sys.stderr, flush=True)


def _write_epoch_samples(stage, G, G0, z, phi, path) -> None:
    """The grid for the fixed (z, phi); the CA noise is reseeded so every epoch's grid uses the same eps."""
    state = st_random.get_rng_state()
    try:
        st_random.manual_seed(0)
        s0, s1 = _generate(G, None, phi, z) if stage == 1 else _generate(G0, G, phi, z)
    finally:
        st_random.set_rng_state(state)
    save_image_grid(s0 if s1 is None else s1, path, scale=3)
