"""LAPGAN's trainer: ``fit_lapgan`` trains every level of a ``striate.models.LAPGAN`` with ``fit_gan``."""
from __future__ import annotations

import os

import numpy as np

from ..data import DataLoader, TensorDataset
from ..tensor import Tensor, tensor, zeros
from .gan import fit_gan

__all__ = ["fit_lapgan"]


def fit_lapgan(lap, images, epochs_per_level, out=None, batch_size: int = 64, lr: float = 2e-4, levels=None,
               preprocess=None, progress: bool = True, resume: bool = False, **fit_gan_kwargs) -> dict:
    """Train each level of ``lap`` (a ``striate.models.LAPGAN``) independently with
    :func:`striate.train.fit_gan`, coarsest first.

    Level k's loader yields ``(I_k, u(I_{k+1}))`` (the coarsest: ``(I_{L-1}, 0)``, the 0
    ignored by its unconditional G), built from the preprocessed images, so ``fit_gan``
    gets an identity ``preprocess``.

    Args:
        images: (N, C, size, size) training images, as ``fit_gan`` takes them (default in [0, 1]).
        epochs_per_level: an int for every level, or a list with one per level (index 0 finest).
        out: a folder; level k writes its figures and checkpoint under ``out/level<k>``.
        batch_size, lr: of every level's loader and optimisers.
        levels: which levels to train (default all).
        preprocess: maps the images to [-1, 1] before the pyramid is built (default
            ``x * 2 - 1``, as ``fit_gan``).
        progress, resume: passed to ``fit_gan``.
        **fit_gan_kwargs: more ``fit_gan`` options (e.g. ``k``, ``loss``, ``thresholds``).

    Returns:
        ``{level: GANHistory}`` for the levels trained.
    """
    if isinstance(epochs_per_level, (int, np.integer)) and not isinstance(epochs_per_level, bool):
        epochs = [int(epochs_per_level)] * lap.levels
    else:
        epochs = list(epochs_per_level)
    if len(epochs) != lap.levels:
        raise ValueError(f"fit_lapgan: epochs_per_level must be an int or {lap.levels} ints, "
                         f"got {epochs_per_level!r}")
    images = images if isinstance(images, Tensor) else tensor(np.asarray(images, np.float32))
    images = preprocess(images) if preprocess is not None else images * 2 - 1
    results = {}
    for k in sorted(range(lap.levels) if levels is None else levels, reverse=True):
        x, y = lap.level_data(images, k)
        loader = DataLoader(TensorDataset(x, y if y is not None else zeros(x.shape[0])), batch_size,
                            shuffle=True)
        results[k] = fit_gan(lap.generators[k], lap.discriminators[k], loader,
                             z_dim=lap.generators[k].z_dim, epochs=epochs[k], lr=lr, preprocess=_identity,
                             out=None if out is None else os.path.join(out, f"level{k}"),
                             progress=progress, resume=resume, **fit_gan_kwargs)
    return results


def _identity(x):
    return x
