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

The trainer, ``striate.train.fit_stackgan``, and the caption-image pairs,
``striate.data.shapes_text_data``, live outside ``striate.models``.
"""
from __future__ import annotations

from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor, cat, ones, randn, zeros
from .attributes import conv_trunk

__all__ = ["ConditioningAugmentation", "WordClassifier", "StageIGenerator", "StageIDiscriminator", "StageIIGenerator",
           "StageIIDiscriminator", "discriminator_loss", "generator_loss", "word_loss", "stackgan_sample",
           "G_LOSSES"]

G_LOSSES = ("minimax", "nonsaturating")


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


def word_loss(word_logits: Tensor, words: Tensor) -> Tensor:
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
