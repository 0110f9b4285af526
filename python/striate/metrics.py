"""Segmentation metrics: IoU (per class and mean), Dice, pixel accuracy.

Metrics are not differentiable: inputs are converted to numpy.
The functions score one batch; the accumulators (``ConfusionMatrix``,
``MeanIoU``, ``MeanDice``) add up pixel counts over many batches, so a
dataset's mean IoU is computed from its total counts rather than averaged
per batch. :func:`striate.train.fit` and ``evaluate`` accept them as metrics. ``pred`` is either
logits/probabilities (N, C, H, W), reduced by argmax over C, or labels (N, H, W);
``target`` is labels (N, H, W). Counts are taken over the whole batch. A class absent
from both pred and target has no defined score: its entry is NaN and the mean skips it.
"""
from __future__ import annotations

import numpy as np

__all__ = ["iou", "dice", "pixel_accuracy", "ConfusionMatrix", "MeanIoU", "MeanDice", "sample_class_stats",
           "psnr", "bicubic_upsample"]


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


class ConfusionMatrix:
    """Accumulates a (num_classes, num_classes) pixel confusion matrix over batches.

    Accumulator protocol (used by :func:`striate.train.fit`): ``reset()``, ``update(pred, target)``
    with one batch, ``compute()`` for the value over everything since the last reset. Rows are
    true classes, columns predicted ones. Target labels outside [0, num_classes) raise.
    """

    def __init__(self, num_classes: int):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def reset(self) -> None:
        self.matrix[...] = 0

    def update(self, pred, target) -> None:
        p, t = _labels(type(self).__name__, pred, target)
        k = self.num_classes
        for name, labels in (("target", t), ("pred", p)):
            if labels.size and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"{type(self).__name__}: {name} labels must lie in [0, {k}), "
                                 f"got [{labels.min()}, {labels.max()}]")
        self.matrix += np.bincount((t * k + p).reshape(-1), minlength=k * k).reshape(k, k)

    def compute(self):
        return self.matrix.copy()

    def _counts(self):
        both = np.diag(self.matrix)
        return both, self.matrix.sum(axis=0), self.matrix.sum(axis=1)


class MeanIoU(ConfusionMatrix):
    """Mean intersection over union over the accumulated pixels (classes absent from both skipped).

    ``per_class()`` gives the per-class IoU (NaN for absent classes).
    """

    def per_class(self):
        both, in_pred, in_target = self._counts()
        union = in_pred + in_target - both
        return _score(both, union, union > 0)[0]

    def compute(self) -> float:
        both, in_pred, in_target = self._counts()
        union = in_pred + in_target - both
        return _score(both, union, union > 0)[1]


class MeanDice(ConfusionMatrix):
    """Mean Dice coefficient over the accumulated pixels (classes absent from both skipped)."""

    def per_class(self):
        both, in_pred, in_target = self._counts()
        return _score(2 * both, in_pred + in_target, in_pred + in_target > 0)[0]

    def compute(self) -> float:
        both, in_pred, in_target = self._counts()
        return _score(2 * both, in_pred + in_target, in_pred + in_target > 0)[1]


def sample_class_stats(classifier, images, num_classes=None) -> dict:
    """How a classifier sorts generated images: a mode-collapse check for GANs.

    Args:
        classifier: a module mapping images (in the range it was trained on, e.g. [0, 1]) to
            (N, C) logits; run in eval mode without gradients, its mode restored afterwards.
        images: (N, ...) Tensor or array.
        num_classes: C (default: the logits' width).

    Returns:
        ``{"histogram": [count per class], "max_share": largest count / N,
        "classes_present": classes predicted at least once,
        "mean_confidence": mean over the images of the largest softmax probability}``.
    """
    from .autograd import no_grad
    from .tensor import Tensor, tensor

    was_training = classifier.training
    device = next((p.device for p in classifier.parameters()), "cpu")
    if not isinstance(images, Tensor):
        images = tensor(np.asarray(images, dtype=np.float32))
    classifier.eval()
    try:
        with no_grad():
            logits = classifier(images.to(device)).numpy().astype(np.float64)
    finally:
        classifier.train(was_training)
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"sample_class_stats: the classifier must return (N, C) logits for N > 0 images, "
                         f"got shape {logits.shape}")
    num_classes = logits.shape[1] if num_classes is None else int(num_classes)
    if logits.shape[1] != num_classes:
        raise ValueError(f"sample_class_stats: num_classes ({num_classes}) must equal the classifier's "
                         f"{logits.shape[1]} logits")
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    histogram = np.bincount(logits.argmax(axis=1), minlength=num_classes)
    return {"histogram": [int(c) for c in histogram], "max_share": float(histogram.max() / len(logits)),
            "classes_present": int((histogram > 0).sum()), "mean_confidence": float(probs.max(axis=1).mean())}


def psnr(a, b) -> float:
    """Peak signal-to-noise ratio in dB: the mean over images of 10 log10(1 / MSE), images in [0, 1]
    (a and b: (N, ...) arrays of the same shape; an MSE under 1e-12 counts as 1e-12)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim < 1 or a.shape[0] == 0:
        raise ValueError(f"psnr: a and b must be (N, ...) arrays of one shape with N >= 1, got {a.shape} and {b.shape}")
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1)
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12))))


def bicubic_upsample(low, size: int) -> np.ndarray:
    """Pillow's bicubic resize of (N, 1, h, w) float images to (N, 1, size, size), clipped to [0, 1]:
    the classical baseline a super-resolution network must beat."""
    from PIL import Image

    out = np.stack([np.asarray(Image.fromarray(img[0].astype(np.float32), mode="F")
                               .resize((size, size), Image.BICUBIC)) for img in low])[:, None]
    return np.clip(out, 0.0, 1.0)
