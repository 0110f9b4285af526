"""Segmentation metrics: IoU (per class and mean), Dice, pixel accuracy.

Metrics are not differentiable: inputs are converted to numpy. ``pred`` is either
logits/probabilities (N, C, H, W), reduced by argmax over C, or labels (N, H, W);
``target`` is labels (N, H, W). Counts are taken over the whole batch. A class absent
from both pred and target has no defined score: its entry is NaN and the mean skips it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["iou", "dice", "pixel_accuracy"]


def _labels(op, pred, target):
    """(pred labels, target labels) as int64 numpy arrays of equal shape."""
    p = pred.numpy() if hasattr(pred, "numpy") else np.asarray(pred)
    t = target.numpy() if hasattr(target, "numpy") else np.asarray(target)
    if p.ndim == t.ndim + 1:
        p = p.argmax(axis=1)
    if p.shape != t.shape:
        raise ValueError(f"{op}: pred must be (N, C, H, W) scores or labels of the target's shape "
                         f"{t.shape}, got {pred.shape}")
    return p.astype(np.int64), t.astype(np.int64)


def _overlaps(op, pred, target, num_classes):
    """Per class: pixels in both, pixels in pred, pixels in target."""
    p, t = _labels(op, pred, target)
    classes = np.arange(num_classes)[:, None]
    p, t = p.reshape(1, -1) == classes, t.reshape(1, -1) == classes
    return (p & t).sum(axis=1), p.sum(axis=1), t.sum(axis=1)


def _score(numerator, denominator, present):
    per_class = np.full(numerator.shape, np.nan)
    per_class[present] = numerator[present] / denominator[present]
    return per_class, float(per_class[present].mean()) if present.any() else float("nan")


def iou(pred, target, num_classes: int):
    """Intersection over union |P ∩ T| / |P ∪ T| per class.

    Returns:
        (per_class, mean): a float64 array of num_classes (NaN for classes absent from both)
        and the mean over the present classes.
    """
    both, in_pred, in_target = _overlaps("iou", pred, target, num_classes)
    union = in_pred + in_target - both
    return _score(both, union, union > 0)


def dice(pred, target, num_classes: int):
    """Dice coefficient 2 |P ∩ T| / (|P| + |T|) per class; returns (per_class, mean) as ``iou``."""
    both, in_pred, in_target = _overlaps("dice", pred, target, num_classes)
    total = in_pred + in_target
    return _score(2 * both, total, total > 0)


def pixel_accuracy(pred, target) -> float:
    """The fraction of pixels whose predicted label equals the target."""
    p, t = _labels("pixel_accuracy", pred, target)
    return float((p == t).mean())
