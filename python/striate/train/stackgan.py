"""StackGAN's trainer: ``fit_stackgan`` (the networks and losses are in ``striate.models.stackgan``).

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

import numpy as np

from .. import random as st_random
from ..autograd import no_grad
from ..models.stackgan import G_LOSSES, discriminator_loss, generator_loss, word_loss, _generate
from ..optim import Adam
from ..serialization import load, save
from ..nn import functional as F
from ..tensor import Tensor, cat, randn, tensor
from .plots import _draw_panel, _pil, save_image_grid

__all__ = ["fit_stackgan", "CHECKPOINT_NAME", "HISTORY_COLUMNS"]

CHECKPOINT_NAME = "last.safetensors"
HISTORY_COLUMNS = ("epoch", "loss_d", "loss_g", "kl", "d_real", "d_fake", "words_real", "words_fake",
                   "epoch_time")


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
                words_real = word_loss(real_words, words) if read_real else None
                if read_real:
                    loss_d = loss_d + words_real * word_weight
                loss_d.backward()
                opt_d.step()
                opt_g.zero_grad()
                # frozen: D.word_net is in eval mode and without weight gradients, G still learns through it
                g_logits, fake_words = D.forward_text(fake, phi) if word_weight else (D(fake, phi), None)
                loss_g, kl = generator_loss(g_logits, mu, logvar, lam, g_loss, kl_reduction)
                if word_weight:
                    words_fake = word_loss(fake_words, words)
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
            loss = word_loss(D.word_logits(images), words)
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
