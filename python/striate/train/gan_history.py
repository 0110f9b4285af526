"""GAN training's records: the warnings, their thresholds and ``GANHistory`` (steps and epochs);
used by :func:`striate.train.fit_gan`, re-exported by ``striate.train``."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from .plots import save_gan_curves_png

__all__ = ["GANWarning", "VanishingGradientWarning", "DiscriminatorSaturationWarning", "ModeCollapseWarning",
           "GANThresholds", "GANHistory", "STEP_COLUMNS", "MEAN_COLUMNS", "EPOCH_COLUMNS"]


class GANWarning(UserWarning):
    """A training pathology found by :func:`fit_gan`'s diagnostics."""


class VanishingGradientWarning(GANWarning):
    """G's gradient norm stayed below the threshold: D is too strong for G to learn from."""


class DiscriminatorSaturationWarning(GANWarning):
    """D separates real from generated samples almost perfectly, step after step."""


class ModeCollapseWarning(GANWarning):
    """The fixed-z samples are much less diverse than real data, or cover few classes."""


@dataclass
class GANThresholds:
    """When :func:`fit_gan` warns (see the module docstring).

    Attributes:
        grad_norm: G's gradient L2 norm below this counts as vanishing.
        patience: consecutive G steps of vanishing gradient or saturation before a warning.
        saturation: D(x) above it together with D(G(z)) below 1 - saturation is saturated.
        diversity_ratio: samples' / real diversity below it flags collapse.
        class_coverage: with a classifier, a fraction of classes present below it flags collapse.
    """
    grad_norm: float = 1e-3
    patience: int = 50
    saturation: float = 0.99
    diversity_ratio: float = 0.5
    class_coverage: float = 0.5


STEP_COLUMNS = ("step", "epoch", "d_real", "d_fake", "d_fake_g", "d_loss", "g_loss", "g_grad_norm", "g_recon")
MEAN_COLUMNS = STEP_COLUMNS[2:]
EPOCH_COLUMNS = ("epoch",) + MEAN_COLUMNS + (
    "g_steps", "d_steps", "unused_batches", "diversity", "diversity_real", "diversity_ratio",
    "classes_present", "max_share", "mean_confidence", "class_histogram", "collapse", "epoch_time")


class GANHistory:
    """What :func:`fit_gan` records: one row per generator step and one per epoch.

    ``steps[column]`` (``STEP_COLUMNS``): ``d_real`` / ``d_fake`` are mean sigmoid(D) on the
    real and generated batches and ``d_loss`` the D loss, averaged over the iteration's k D
    steps; ``d_fake_g`` is mean D(G(z)) at the G step, ``g_loss`` its loss and ``g_grad_norm``
    the L2 norm of G's whole gradient (of the adversarial loss plus any reconstruction term,
    whose value is ``g_recon``; None without one). ``history[column]`` (``EPOCH_COLUMNS``): the epoch's
    means of those, step counts, the diversity statistics, the classifier's statistics of the
    fixed samples (NaN / None without a classifier) and the ``collapse`` flag.
    """

    def __init__(self):
        self.steps = {column: [] for column in STEP_COLUMNS}
        self.data = {column: [] for column in EPOCH_COLUMNS}
        self.streaks = {"vanishing": 0, "saturated": 0}

    def __len__(self):
        return len(self.data["epoch"])

    def __getitem__(self, column: str) -> list:
        return self.data[column]

    def __repr__(self):
        return f"GANHistory({len(self)} epochs, {len(self.steps['step'])} G steps)"

    def add_step(self, row: dict) -> None:
        for column in STEP_COLUMNS:
            self.steps[column].append(row.get(column))  # g_recon: None without reconstruction

    def add_epoch(self, row: dict) -> None:
        epoch = row["epoch"]
        picked = [i for i, e in enumerate(self.steps["epoch"]) if e == epoch]
        for column in MEAN_COLUMNS:
            values = [self.steps[column][i] for i in picked if self.steps[column][i] is not None]
            row[column] = float(np.mean(values)) if values else (None if column == "g_recon" else math.nan)
        for column in EPOCH_COLUMNS:
            self.data[column].append(row[column])

    def summary(self, index: int = -1) -> str:
        """One line about an epoch, e.g. for a progress log."""
        row = {column: values[index] for column, values in self.data.items()}
        parts = [f"epoch {row['epoch']}", f"D(x) {row['d_real']:.3f}", f"D(G(z)) {row['d_fake']:.3f}",
                 f"d_loss {row['d_loss']:.4f}", f"g_loss {row['g_loss']:.4f}",
                 f"|grad G| {row['g_grad_norm']:.3g}", f"diversity {row['diversity_ratio']:.2f}"]
        if row["class_histogram"] is not None:
            parts.append(f"classes {row['classes_present']}")
        parts += ["COLLAPSE" if row["collapse"] else "ok", f"{row['epoch_time']:.1f}s"]
        return " | ".join(parts)

    def to_dict(self) -> dict:
        """Plain values (for checkpoints); :meth:`from_dict` rebuilds the history exactly."""
        return {"steps": {c: list(v) for c, v in self.steps.items()},
                "epochs": {c: list(v) for c, v in self.data.items()}, "streaks": dict(self.streaks)}

    @classmethod
    def from_dict(cls, state: dict) -> "GANHistory":
        history = cls()
        history.steps = {c: list(state["steps"][c]) for c in STEP_COLUMNS}
        history.data = {c: list(state["epochs"][c]) for c in EPOCH_COLUMNS}
        history.streaks = {k: int(v) for k, v in state["streaks"].items()}
        return history

    def save(self, directory) -> tuple[str, str]:
        """Write ``history.json`` (NaN as null) and ``losses.png`` into directory; returns both paths."""
        os.makedirs(directory, exist_ok=True)
        json_path = os.path.join(os.fspath(directory), "history.json")
        png_path = os.path.join(os.fspath(directory), "losses.png")

        def plain(values):
            return [None if isinstance(v, float) and math.isnan(v) else v for v in values]

        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"epochs": {c: plain(v) for c, v in self.data.items()},
                       "steps": {c: plain(v) for c, v in self.steps.items()}}, f, indent=1, allow_nan=False)
            f.write("\n")
        save_gan_curves_png(self.steps, png_path)
        return json_path, png_path
