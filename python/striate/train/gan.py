"""``fit_gan``: the GAN paper's alternating training, with diagnostics, figures and resumable checkpoints.

Algorithm (Goodfellow et al., 2014, Algorithm 1), per iteration:

1. k discriminator steps, each on a FRESH data minibatch x_1..x_m and fresh noise
   z_1..z_m ~ N(0, I): ascend 1/m sum [log D(x_t) + log(1 - D(G(z_t)))], implemented
   as descending ``BCE_with_logits(D(x), 1) + BCE_with_logits(D(G(z)), 0)`` (stable
   for any logit). G(z) is computed under ``no_grad``: G's parameters get no gradient
   and G's optimizer does not step.
2. one generator step with fresh z: descend mean log(1 - D(G(z))) (``loss="minimax"``,
   written ``-BCE_with_logits(D(G(z)), 0)``) or mean -log D(G(z))
   (``loss="nonsaturating"``, ``BCE_with_logits(D(G(z)), 1)``, the paper's practical
   variant with strong early gradients). D's parameters are frozen for the step
   (``requires_grad`` off, gradients cleared) and only G's optimizer steps, so D's
   parameters do not change; G's gradients are cleared after its step.

Here D(x) = sigmoid(logit). An epoch is one pass over the loader: its B batches
feed floor(B / k) iterations (every D step uses its own batch, every G step
follows exactly k D steps); the last B mod k batches of the pass are not used
(recorded as ``unused_batches``). A G step uses the batch size m and, for a
conditional G, the conditions y of the iteration's last data batch.

Data and conditions. The loader yields ``x`` or ``(x, y)`` batches. ``preprocess``
maps loader images to D's range [-1, 1] (default ``x * 2 - 1``, for data in
[0, 1]); it is applied to ``x`` and to image conditions (floating-point 4-D
``y``); label conditions (integer ``y``) are passed as they are. With an
unconditional G, ``y`` is ignored.

Diagnostics (thresholds in :class:`GANThresholds`), all warned with subclasses of
:class:`GANWarning`:

* vanishing generator gradient: the L2 norm of G's gradient below ``grad_norm``
  for ``patience`` consecutive G steps (:class:`VanishingGradientWarning`);
* saturated discriminator: mean D(x) > ``saturation`` and mean D(G(z)) <
  1 - ``saturation`` for ``patience`` consecutive G steps
  (:class:`DiscriminatorSaturationWarning`);
* mode collapse, per epoch (:class:`ModeCollapseWarning`, and the ``collapse``
  column): the diversity ratio (mean pairwise L2 distance between the fixed-z
  samples over the same statistic on the epoch's first real batch) below
  ``diversity_ratio``, or, with a ``classifier``, fewer than ``class_coverage``
  of the classes among the fixed samples' predicted classes.

Files in ``out`` after every epoch: ``samples_epoch{e:03d}.png`` and
``samples.png`` (the fixed-z grid), ``conditions.png`` (image conditions only),
``losses.png`` (per-G-step curves), ``history.json`` and the checkpoint
``last.safetensors``::

    {"epoch": int, "G": state_dict, "D": state_dict, "g_optimizer": state_dict,
     "d_optimizer": state_dict, "rng": striate.get_rng_state(), "loader": loader state or None,
     "history": GANHistory.to_dict(), "fixed_z": array, "fixed_condition": array or None,
     "meta": dict or None}

``resume=True`` continues bit-exactly, as :func:`striate.train.fit` (its module
docstring): noise is drawn from striate's generator, whose state is saved at
each epoch boundary; the fixed z comes from its own ``sample_seed`` generator.
"""
from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

from .. import random as st_random
from ..autograd import no_grad
from ..metrics import sample_class_stats
from ..nn import functional as F
from ..optim import Adam
from ..serialization import load, save
from ..tensor import Tensor, ones, randn, tensor, zeros
from ._device import _as_tensor, _model_device
from .loop import CHECKPOINT_NAME, _progress_bar, _report
from .gan_history import (DiscriminatorSaturationWarning, GANHistory, GANThresholds, GANWarning, ModeCollapseWarning,
                          VanishingGradientWarning)
from .plots import save_image_grid

__all__ = ["fit_gan", "generator_loss", "mean_pairwise_distance", "GANHistory", "GANThresholds", "GANWarning", "VanishingGradientWarning",
           "DiscriminatorSaturationWarning", "ModeCollapseWarning"]

LOSSES = ("nonsaturating", "minimax")


# ------------------------------------------------------------------ one step each
def _call(model, inputs, y, conditional):
    return model(inputs, y) if conditional else model(inputs)


def _mean_probability(logits) -> float:
    return float(F.sigmoid(logits.detach()).mean().item())


def _clear_grads(model) -> None:
    for p in model.parameters():
        p.grad = None


def _discriminator_step(G, D, d_opt, x, y, z_dim, conditional) -> dict:
    """One ascent step of D on mean[log D(x) + log(1 - D(G(z)))] with fresh z; G is untouched."""
    m = x.shape[0]
    z = randn(m, z_dim, device=x.device)
    with no_grad():
        fake = _call(G, z, y, conditional)
    real_logits, fake_logits = _call(D, x, y, conditional), _call(D, fake, y, conditional)
    loss = (F.binary_cross_entropy_with_logits(real_logits, ones(m, device=x.device))
            + F.binary_cross_entropy_with_logits(fake_logits, zeros(m, device=x.device)))
    _clear_grads(D)
    loss.backward()
    d_opt.step()
    return {"d_loss": float(loss.item()), "d_real": _mean_probability(real_logits),
            "d_fake": _mean_probability(fake_logits)}


def generator_loss(logits, loss: str = "nonsaturating"):
    """G's loss from D's logits on generated samples.

    ``"minimax"``: mean log(1 - sigmoid(l)) (the value function's term, to descend);
    ``"nonsaturating"``: mean -log sigmoid(l). Both via the stable BCE with logits.
    """
    if loss == "minimax":
        return -F.binary_cross_entropy_with_logits(logits, zeros(logits.shape[0], device=logits.device))
    if loss == "nonsaturating":
        return F.binary_cross_entropy_with_logits(logits, ones(logits.shape[0], device=logits.device))
    raise ValueError(f"generator_loss: loss must be one of {LOSSES}, got {loss!r}")


def _generator_step(G, D, g_opt, m, y, z_dim, conditional, loss, device, recon=None, x=None) -> dict:
    """One descent step of G with fresh z; D's parameters are frozen (no gradient) and D does not step.

    recon = (kind, weight) adds ``weight * L(G(z, y), x)`` (L1 or L2, x the real images
    paired with the conditions y) to G's loss, as in pix2pix.
    """
    z = randn(m, z_dim, device=device)
    frozen = [p for p in D.parameters() if p.requires_grad]
    _clear_grads(G)
    _clear_grads(D)
    for p in frozen:
        p.requires_grad_(False)
    try:
        fake = _call(G, z, y, conditional)
        logits = _call(D, fake, y, conditional)
        g_loss = generator_loss(logits, loss)
        total = g_loss
        if recon is not None:
            kind, weight = recon
            recon_loss = (F.l1_loss if kind == "l1" else F.mse_loss)(fake, x)
            total = g_loss + weight * recon_loss
        total.backward()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    norm = math.sqrt(sum(float((p.grad.numpy().astype(np.float64) ** 2).sum())
                         for p in G.parameters() if p.grad is not None))
    g_opt.step()
    _clear_grads(G)
    row = {"g_loss": float(g_loss.item()), "d_fake_g": _mean_probability(logits), "g_grad_norm": norm}
    if recon is not None:
        row["g_recon"] = float(recon_loss.item())
    return row


# ------------------------------------------------------------------ diagnostics
def mean_pairwise_distance(images) -> float:
    """Mean L2 distance between every two of the (N, ...) images (NaN for fewer than two)."""
    flat = (images.numpy() if isinstance(images, Tensor) else np.asarray(images)).reshape(len(images), -1)
    flat = flat.astype(np.float64)
    n = flat.shape[0]
    if n < 2:
        return math.nan
    squared = (flat ** 2).sum(1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2 * flat @ flat.T, 0.0)
    return float(np.sqrt(d2)[np.triu_indices(n, 1)].mean())


def _track_streaks(history, row, thresholds) -> None:
    """Advance the vanishing / saturation streaks and warn when one reaches ``patience``."""
    checks = (("vanishing", row["g_grad_norm"] < thresholds.grad_norm, VanishingGradientWarning,
               f"G's gradient norm has stayed below {thresholds.grad_norm:g} for {thresholds.patience} "
               f"G steps (now {row['g_grad_norm']:.3g}): D is too strong for G to learn"),
              ("saturated", row["d_real"] > thresholds.saturation and row["d_fake"] < 1 - thresholds.saturation,
               DiscriminatorSaturationWarning,
               f"D has saturated for {thresholds.patience} G steps (D(x) {row['d_real']:.4f} > "
               f"{thresholds.saturation:g}, D(G(z)) {row['d_fake']:.4f} < {1 - thresholds.saturation:g})"))
    for name, bad, category, message in checks:
        history.streaks[name] = history.streaks[name] + 1 if bad else 0
        if history.streaks[name] == thresholds.patience:
            warnings.warn(f"fit_gan: step {row['step']}: {message}", category, stacklevel=3)


def _split_batch(batch):
    if isinstance(batch, (tuple, list)):
        if len(batch) != 2:
            raise ValueError(f"fit_gan: a loader batch must be x or (x, y), got {len(batch)} items")
        return batch
    return batch, None


def _prepare_batch(batch, preprocess, conditional, device):
    """(x in D's range, y for G and D or None): preprocess x and image conditions, keep labels."""
    x, y = _split_batch(batch)
    x = preprocess(_as_tensor(x, device))
    if not conditional:
        return x, None
    if y is None:
        raise ValueError("fit_gan: G is conditional, so the loader must yield (x, y) batches")
    y = _as_tensor(y, device)
    return x, preprocess(y) if _is_image(y) else y


def _iteration(G, D, g_opt, d_opt, window, z_dim, conditional, loss, device, recon=None) -> dict:
    """k D steps, one per batch of window, then one G step sized and conditioned like the last batch."""
    sums = {}
    for x, y in window:
        for key, value in _discriminator_step(G, D, d_opt, x, y, z_dim, conditional).items():
            sums[key] = sums.get(key, 0.0) + value
    row = {key: value / len(window) for key, value in sums.items()}
    x, y = window[-1]
    row.update(_generator_step(G, D, g_opt, x.shape[0], y, z_dim, conditional, loss, device, recon, x))
    return row


def _is_image(y) -> bool:
    return y.ndim == 4 and y.dtype.kind == "f"


def _default_preprocess(x):
    return x * 2 - 1


def _fixed_labels(conditional, fixed_condition, num_classes, n, device):
    """The fixed conditions known before training: given ones, or labels 0..num_classes-1 cycled."""
    if not conditional:
        return None
    if fixed_condition is not None:
        return _as_tensor(fixed_condition, device)[:n]
    if num_classes is not None:
        return tensor(np.arange(n) % num_classes, device=device)
    return None


def _samples(G, fixed_z, condition, conditional):
    """G on the fixed z (as many as there are fixed conditions), in eval mode without gradients."""
    was_training = G.training
    G.eval()
    try:
        with no_grad():
            z = fixed_z if condition is None else fixed_z[:condition.shape[0]]
            return _call(G, z, condition, conditional)
    finally:
        G.train(was_training)


def _epoch_diagnostics(samples, real, classifier, num_classes, thresholds) -> dict:
    diversity, diversity_real = mean_pairwise_distance(samples), mean_pairwise_distance(real)
    ratio = diversity / diversity_real if diversity_real > 0 else math.nan
    row = {"diversity": diversity, "diversity_real": diversity_real, "diversity_ratio": ratio,
           "classes_present": math.nan, "max_share": math.nan, "mean_confidence": math.nan,
           "class_histogram": None}
    reasons = []
    if ratio < thresholds.diversity_ratio:
        reasons.append(f"diversity ratio {ratio:.3f} < {thresholds.diversity_ratio:g}")
    if classifier is not None:
        stats = sample_class_stats(classifier, (samples + 1) * 0.5, num_classes)
        row.update(class_histogram=stats["histogram"], classes_present=stats["classes_present"],
                   max_share=stats["max_share"], mean_confidence=stats["mean_confidence"])
        coverage = stats["classes_present"] / len(stats["histogram"])
        if coverage < thresholds.class_coverage:
            reasons.append(f"{stats['classes_present']} of {len(stats['histogram'])} classes present "
                           f"(< {thresholds.class_coverage:g})")
    row["collapse"] = bool(reasons)
    return row, reasons


# ------------------------------------------------------------------ checkpoints
def _save_checkpoint(path, epoch, G, D, g_opt, d_opt, loader, history, fixed_z, fixed_condition, meta):
    save({"epoch": epoch, "G": G.state_dict(), "D": D.state_dict(), "g_optimizer": g_opt.state_dict(),
          "d_optimizer": d_opt.state_dict(), "rng": st_random.get_rng_state(),
          "loader": loader.state_dict() if hasattr(loader, "state_dict") else None,
          "history": history.to_dict(), "fixed_z": fixed_z,
          "fixed_condition": fixed_condition, "meta": meta}, path)


def restore_pair(state, G, D, g_opt, d_opt, loader, optimizer_keys=("g_optimizer", "d_optimizer")) -> None:
    """Load a GAN checkpoint's networks, optimizers, loader state and random state in place.

    ``state`` holds ``"G"``, ``"D"``, the two optimizer states under ``optimizer_keys``,
    ``"loader"`` (or None) and ``"rng"``; shared by ``fit_gan`` and ``fit_stackgan``.
    """
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    g_opt.load_state_dict(state[optimizer_keys[0]])
    d_opt.load_state_dict(state[optimizer_keys[1]])
    if state["loader"] is not None and hasattr(loader, "load_state_dict"):
        loader.load_state_dict(state["loader"])
    st_random.set_rng_state(state["rng"])


def _restore_checkpoint(path, G, D, g_opt, d_opt, loader, device):
    state = load(path)
    restore_pair(state, G, D, g_opt, d_opt, loader)
    condition = state["fixed_condition"]
    return (int(state["epoch"]), GANHistory.from_dict(state["history"]), _as_tensor(state["fixed_z"], device),
            None if condition is None else _as_tensor(condition, device))


def _check_arguments(G, loader, z_dim, k, loss, epochs, n_samples, resume, out):
    if z_dim is None:
        z_dim = getattr(G, "z_dim", None)
        if z_dim is None:
            raise ValueError("fit_gan: z_dim must be given when G has no z_dim attribute")
    elif getattr(G, "z_dim", z_dim) != z_dim:
        raise ValueError(f"fit_gan: z_dim ({z_dim}) must equal G.z_dim ({G.z_dim})")
    for name, value, low in (("z_dim", z_dim, 1), ("k", k, 1), ("epochs", epochs, 0), ("n_samples", n_samples, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"fit_gan: {name} must be an int of at least {low}, got {value!r}")
    if hasattr(loader, "__len__") and len(loader) < k:
        raise ValueError(f"fit_gan: the loader's {len(loader)} batches per epoch must be at least k ({k})")
    if loss not in LOSSES:
        raise ValueError(f"fit_gan: loss must be one of {LOSSES}, got {loss!r}")
    if resume and out is None:
        raise ValueError("fit_gan: resume=True needs out (the folder holding last.safetensors)")
    return z_dim


def fit_gan(G, D, loader, z_dim=None, k=1, loss="nonsaturating", epochs=1, lr=2e-4, betas=(0.5, 0.999),
            g_optimizer=None, d_optimizer=None, preprocess=None, out=None, resume=False, progress=True,
            classifier=None, num_classes=None, n_samples=64, fixed_condition=None, sample_seed=0,
            thresholds=None, meta=None, reconstruction=None, reconstruction_weight=0.0) -> GANHistory:
    """Train a GAN with the paper's alternating updates (see the module docstring).

    Args:
        G: generator, ``G(z)`` or ``G(z, y)`` when ``G.conditional``; outputs in [-1, 1].
        D: discriminator returning (N,) logits, ``D(x)`` or ``D(x, y)`` (as G).
        loader: an iterable of ``x`` or ``(x, y)`` batches, one pass per epoch.
        z_dim: noise length (default ``G.z_dim``).
        k: discriminator steps per generator step.
        loss: the generator's loss, ``"nonsaturating"`` or ``"minimax"``.
        epochs: total epochs (with ``resume``, counting those already done).
        lr, betas: Adam's settings for the default optimizers.
        g_optimizer, d_optimizer: optimizers over G's / D's parameters (default Adam(lr, betas)).
        preprocess: maps loader images (and image conditions) to [-1, 1]; default ``x * 2 - 1``.
        out: folder for the figures, ``history.json`` and the checkpoint (None: write nothing).
        resume: continue from ``out``'s checkpoint when there is one, bit-exactly.
        progress: a tqdm bar and one summary line per epoch on stderr.
        classifier: optional module mapping [0, 1] images to class logits; the fixed
            samples' class statistics are recorded per epoch (see :func:`sample_class_stats`).
        num_classes: classes of a label-conditional G (default ``G.num_classes``) and of the
            classifier's statistics.
        n_samples: fixed noise vectors for the per-epoch samples and the diversity statistic.
        fixed_condition: conditions for the fixed samples, in the loader's format (default:
            labels 0..num_classes-1 cycled, or the first batch's image conditions).
        sample_seed: seed of the fixed noise's own generator (striate's stays untouched).
        thresholds: a :class:`GANThresholds` (default thresholds when None).
        meta: plain values stored in every checkpoint under ``"meta"``.
        reconstruction: ``None``, ``"l1"`` or ``"l2"``: for an image-conditioned G whose output
            is paired with the real x of its conditions (super-resolution), G's loss gains
            ``reconstruction_weight * L(G(z, y), x)`` (pix2pix's L1 term); recorded as ``g_recon``.
        reconstruction_weight: the weight of that term.

    Returns:
        The :class:`GANHistory` (restored epochs included).
    """
    z_dim = _check_arguments(G, loader, z_dim, k, loss, epochs, n_samples, resume, out)
    thresholds = thresholds or GANThresholds()
    if reconstruction not in (None, "l1", "l2"):
        raise ValueError(f"fit_gan: reconstruction must be None, 'l1' or 'l2', got {reconstruction!r}")
    if reconstruction is not None and not reconstruction_weight > 0:
        raise ValueError(f"fit_gan: reconstruction_weight must be > 0 with reconstruction, "
                         f"got {reconstruction_weight!r}")
    recon = (reconstruction, float(reconstruction_weight)) if reconstruction is not None else None
    preprocess = preprocess or _default_preprocess
    conditional = bool(getattr(G, "conditional", False))
    num_classes = num_classes if num_classes is not None else getattr(G, "num_classes", None)
    g_opt = g_optimizer or Adam(G.parameters(), lr=lr, betas=betas)
    d_opt = d_optimizer or Adam(D.parameters(), lr=lr, betas=betas)
    device = _model_device(G)
    fixed_z = tensor(np.random.default_rng(sample_seed).standard_normal((n_samples, z_dim)).astype(np.float32),
                     device=device)
    if fixed_condition is not None and _is_image(_as_tensor(fixed_condition, device)):
        fixed_condition = preprocess(_as_tensor(fixed_condition, device))
    condition = _fixed_labels(conditional, fixed_condition, num_classes, n_samples, device)
    history, start, path = GANHistory(), 0, None
    if out is not None:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(os.fspath(out), CHECKPOINT_NAME)
        if resume and os.path.exists(path):
            start, history, fixed_z, condition = _restore_checkpoint(path, G, D, g_opt, d_opt, loader, device)
    for epoch in range(start + 1, epochs + 1):
        began, real, window, g_steps = time.perf_counter(), None, [], 0
        G.train()
        D.train()
        bar = _progress_bar(loader, epoch, epochs, progress)
        try:
            for batch in loader:
                x, y = _prepare_batch(batch, preprocess, conditional, device)
                if conditional and condition is None:
                    condition = y[:n_samples]
                if real is None:
                    real = x[:n_samples].numpy()
                window.append((x, y))
                if bar is not None:
                    bar.update(1)
                if len(window) < k:
                    continue
                row = _iteration(G, D, g_opt, d_opt, window, z_dim, conditional, loss, device, recon)
                row.update(step=len(history.steps["step"]) + 1, epoch=epoch)
                history.add_step(row)
                _track_streaks(history, row, thresholds)
                window, g_steps = [], g_steps + 1
                if bar is not None:
                    bar.set_postfix(d_loss=f"{row['d_loss']:.3f}", g_loss=f"{row['g_loss']:.3f}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
        if real is None:
            raise ValueError(f"fit_gan: the loader yielded no batches in epoch {epoch}")
        samples = _samples(G, fixed_z, condition, conditional)
        row, reasons = _epoch_diagnostics(samples, real, classifier, num_classes, thresholds)
        if reasons:
            warnings.warn(f"fit_gan: epoch {epoch}: possible mode collapse: {'; '.join(reasons)}",
                          ModeCollapseWarning, stacklevel=2)
        row.update(epoch=epoch, g_steps=g_steps, d_steps=g_steps * k, unused_batches=len(window),
                   epoch_time=time.perf_counter() - began)
        history.add_epoch(row)
        if progress:
            _report(history.summary(-1), bar is not None)
        if out is not None:
            _write_figures(out, epoch, samples, condition, num_classes, history)
            _save_checkpoint(path, epoch, G, D, g_opt, d_opt, loader, history, fixed_z, condition, meta)
    return history


def _write_figures(out, epoch, samples, condition, num_classes, history) -> None:
    """The fixed samples' grids (one column per class for label conditions), conditions, curves, JSON."""
    image_condition = condition is not None and _is_image(condition)
    nrow = num_classes if condition is not None and not image_condition and num_classes else 8
    epoch_png = os.path.join(os.fspath(out), f"samples_epoch{epoch:03d}.png")
    save_image_grid(samples, epoch_png, nrow=nrow)
    save_image_grid(samples, os.path.join(os.fspath(out), "samples.png"), nrow=nrow)
    if image_condition:
        save_image_grid(condition, os.path.join(os.fspath(out), "conditions.png"), nrow=nrow)
    history.save(out)
