"""``History``: what :func:`striate.train.fit` records per epoch, saved as JSON and a PNG.

Columns (one value per epoch; NaN where there was nothing to measure, e.g.
no validation loader): ``epoch``, ``train_loss``, ``train_accuracy``,
``val_loss``, ``val_accuracy``, ``lr``, ``epoch_time`` (seconds), plus
``train_<name>`` / ``val_<name>`` for each extra metric. JSON has no NaN, so
``history.json`` writes them as ``null``.
"""
from __future__ import annotations

import json
import math
import os

BASE_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "epoch_time")


class History:
    """Per-epoch training record.

    Args:
        metric_names: names of the extra metrics (columns ``train_<name>`` and ``val_<name>``).
    """

    def __init__(self, metric_names=()):
        self.metric_names = list(metric_names)
        self.columns = list(BASE_COLUMNS) + [f"{split}_{name}" for name in self.metric_names
                                              for split in ("train", "val")]
        self.data = {column: [] for column in self.columns}

    def __len__(self):
        return len(self.data["epoch"])

    def __getitem__(self, column: str) -> list:
        return self.data[column]

    def __getattr__(self, column: str) -> list:
        data = self.__dict__.get("data")
        if data is not None and column in data:
            return data[column]
        raise AttributeError(f"History has no column {column!r}")

    def __repr__(self):
        return f"History({len(self)} epochs: {', '.join(self.columns)})"

    def append(self, epoch: int, train: dict, val: dict | None, lr: float, epoch_time: float) -> None:
        """Record one epoch from the train and validation results of ``evaluate``'s shape."""
        val = val or {}
        row = {"epoch": epoch, "lr": float(lr), "epoch_time": float(epoch_time)}
        for split, results in (("train", train), ("val", val)):
            for name in ["loss", "accuracy"] + self.metric_names:
                row[f"{split}_{name}"] = float(results.get(name, math.nan))
        for column in self.columns:
            self.data[column].append(row[column])

    def summary(self, index: int = -1) -> str:
        """One line about an epoch, e.g. for a progress log."""
        row = {column: values[index] for column, values in self.data.items()}
        parts = [f"epoch {row['epoch']}", f"train loss {row['train_loss']:.4f}",
                 f"acc {row['train_accuracy']:.4f}"]
        if not math.isnan(row["val_loss"]):
            parts += [f"val loss {row['val_loss']:.4f}", f"acc {row['val_accuracy']:.4f}"]
        for name in self.metric_names:
            split = "val" if not math.isnan(row[f"val_{name}"]) else "train"
            parts.append(f"{split} {name} {row[f'{split}_{name}']:.4f}")
        parts += [f"lr {row['lr']:.3g}", f"{row['epoch_time']:.1f}s"]
        return " | ".join(parts)

    def to_dict(self) -> dict:
        """Plain values (for checkpoints); :meth:`from_dict` rebuilds the History exactly."""
        return {"metric_names": list(self.metric_names),
                "data": {column: list(values) for column, values in self.data.items()}}

    @classmethod
    def from_dict(cls, state: dict) -> "History":
        history = cls(state["metric_names"])
        for column in history.columns:
            history.data[column] = list(state["data"][column])
        return history

    def save(self, directory) -> tuple[str, str]:
        """Write ``history.json`` and ``curves.png`` (loss and accuracy curves) into directory.

        Returns:
            The two paths.
        """
        from .plots import save_curves_png

        os.makedirs(directory, exist_ok=True)
        json_path = os.path.join(os.fspath(directory), "history.json")
        png_path = os.path.join(os.fspath(directory), "curves.png")
        rows = {column: [None if isinstance(v, float) and math.isnan(v) else v for v in values]
                for column, values in self.data.items()}
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, allow_nan=False)
            f.write("\n")
        save_curves_png(self, png_path)
        return json_path, png_path
