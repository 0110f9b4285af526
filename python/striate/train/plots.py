"""PNG figures drawn with Pillow: training curves, a confusion matrix, a grid of predictions.

Pillow's ``ImageDraw`` keeps the figures dependency-light and identical on
every machine: simple axes with min/max tick labels, polylines and a legend.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from .loop import _as_tensor, _model_device

TRAIN_COLOR = (31, 119, 180)
VAL_COLOR = (255, 127, 14)
GOOD_COLOR = (0, 160, 0)
BAD_COLOR = (220, 0, 0)


def _pil():
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise ImportError("striate.train's PNG figures need Pillow: pip install Pillow") from exc
    return Image, ImageDraw, ImageFont.load_default()


def _numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _draw_panel(draw, font, box, title, series):
    """One line chart in box = (left, top, right, bottom); series = [(label, color, xs, ys)]."""
    left, top, right, bottom = box
    plot = (left + 50, top + 20, right - 10, bottom - 30)
    draw.text((left + 50, top + 4), title, fill="black", font=font)
    draw.rectangle(plot, outline="black")
    points = [(x, y) for _, _, xs, ys in series for x, y in zip(xs, ys) if not math.isnan(y)]
    if not points:
        draw.text((plot[0] + 10, plot[1] + 10), "no data", fill="gray", font=font)
        return
    x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
    y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    width, height = plot[2] - plot[0], plot[3] - plot[1]

    def to_pixel(x, y):
        return (plot[0] + (x - x_lo) / (x_hi - x_lo) * width, plot[3] - (y - y_lo) / (y_hi - y_lo) * height)

    for value in (y_lo, y_hi):
        y = to_pixel(x_lo, value)[1]
        draw.line((plot[0] - 4, y, plot[0], y), fill="black")
        draw.text((left + 2, y - 6), f"{value:.3g}", fill="black", font=font)
    for value in (x_lo, x_hi):
        x = to_pixel(value, y_lo)[0]
        draw.line((x, plot[3], x, plot[3] + 4), fill="black")
        draw.text((x - 6, plot[3] + 6), f"{value:g}", fill="black", font=font)
    draw.text(((plot[0] + plot[2]) // 2 - 15, plot[3] + 16), "epoch", fill="black", font=font)
    legend_y = plot[1] + 6
    for label, color, xs, ys in series:
        pixels = [to_pixel(x, y) for x, y in zip(xs, ys) if not math.isnan(y)]
        if not pixels:
            continue
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2)
        for px, py in pixels:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
        draw.line((plot[2] - 70, legend_y + 6, plot[2] - 55, legend_y + 6), fill=color, width=2)
        draw.text((plot[2] - 50, legend_y), label, fill="black", font=font)
        legend_y += 14


def save_curves_png(history, path, size=(800, 320)) -> None:
    """Loss (left) and accuracy (right) per epoch, train and validation, as a PNG."""
    Image, ImageDraw, font = _pil()
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    half = size[0] // 2
    epochs = history["epoch"]
    for box, name in (((0, 0, half, size[1]), "loss"), ((half, 0, size[0], size[1]), "accuracy")):
        series = [(split, color, epochs, history[f"{split}_{name}"])
                  for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR))]
        _draw_panel(draw, font, box, name, series)
    image.save(path, format="PNG")


def confusion_matrix(model, loader, num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class) over loader, in eval mode.

    Returns:
        An int64 array of shape (num_classes, num_classes); rows are true classes.
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    was_training = model.training
    device = _model_device(model)
    model.eval()
    try:
        with no_grad():
            for inputs, targets in loader:
                preds = model(_as_tensor(inputs, device)).argmax(1).numpy()
                np.add.at(matrix, (_numpy(targets).astype(np.int64), preds.astype(np.int64)), 1)
    finally:
        model.train(was_training)
    return matrix


def save_confusion_png(matrix, path, cell: int = 36) -> None:
    """A confusion matrix as a PNG heat map with the counts written in each cell."""
    Image, ImageDraw, font = _pil()
    matrix = _numpy(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"save_confusion_png: matrix must be square, got shape {matrix.shape}")
    n = matrix.shape[0]
    margin = 40
    image = Image.new("RGB", (margin + n * cell + 10, margin + n * cell + 10), "white")
    draw = ImageDraw.Draw(image)
    draw.text((margin, 2), "predicted", fill="black", font=font)
    draw.text((2, 2), "true", fill="black", font=font)
    peak = max(int(matrix.max()), 1)
    for i in range(n):
        draw.text((margin + i * cell + cell // 2 - 3, 20), str(i), fill="black", font=font)
        draw.text((20, margin + i * cell + cell // 2 - 6), str(i), fill="black", font=font)
        for j in range(n):
            shade = int(255 * (1 - matrix[i, j] / peak))
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell, margin + (i + 1) * cell)
            draw.rectangle(box, fill=(shade, shade, 255), outline=(200, 200, 200))
            draw.text((box[0] + 4, box[1] + cell // 2 - 6), str(int(matrix[i, j])),
                      fill="white" if shade < 128 else "black", font=font)
    image.save(path, format="PNG")


def save_prediction_grid(images, labels, preds, path, columns: int = 8, scale: int = 3) -> None:
    """A PNG grid of images, each captioned with its prediction: green when right, red when wrong.

    Args:
        images: (N, 1, H, W), (N, H, W) or (N, 3, H, W) values in [0, 1] (Tensor or array).
        labels, preds: N true and predicted classes.
        path: the PNG file.
        columns: images per row.
        scale: each image is enlarged by this integer factor.
    """
    Image, ImageDraw, font = _pil()
    images, labels, preds = _numpy(images), _numpy(labels).reshape(-1), _numpy(preds).reshape(-1)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"save_prediction_grid: images must be (N, H, W) or (N, 1|3, H, W), "
                         f"got shape {images.shape}")
    n = images.shape[0]
    if not len(labels) == len(preds) == n:
        raise ValueError(f"save_prediction_grid: {n} images but {len(labels)} labels and "
                         f"{len(preds)} predictions")
    h, w = images.shape[2] * scale, images.shape[3] * scale
    caption = 14
    rows = max(1, math.ceil(n / columns))
    grid = Image.new("RGB", (columns * (w + 4) + 4, rows * (h + caption + 4) + 4), "white")
    draw = ImageDraw.Draw(grid)
    pixels = (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8)
    for k in range(n):
        x = 4 + (k % columns) * (w + 4)
        y = 4 + (k // columns) * (h + caption + 4)
        plane = pixels[k].transpose(1, 2, 0)
        tile = Image.fromarray(plane[:, :, 0] if plane.shape[2] == 1 else plane).convert("RGB")
        grid.paste(tile.resize((w, h), Image.NEAREST), (x, y))
        right = int(preds[k]) == int(labels[k])
        text = f"{int(preds[k])}" if right else f"{int(preds[k])} (true {int(labels[k])})"
        draw.text((x, y + h + 1), text, fill=GOOD_COLOR if right else BAD_COLOR, font=font)
    grid.save(path, format="PNG")
