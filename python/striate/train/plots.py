"""PNG figures drawn with Pillow: training curves, a confusion matrix, a grid of predictions,
segmentation overlays.

Pillow's ``ImageDraw`` keeps the figures dependency-light and identical on
every machine: simple axes with min/max tick labels, polylines and a legend.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor
from ._device import _as_tensor, _model_device

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


def _draw_panel(draw, font, box, title, series, xlabel="epoch", markers=True):
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
    draw.text(((plot[0] + plot[2]) // 2 - 15, plot[3] + 16), xlabel, fill="black", font=font)
    legend_y = plot[1] + 6
    for label, color, xs, ys in series:
        pixels = [to_pixel(x, y) for x, y in zip(xs, ys) if not math.isnan(y)]
        if not pixels:
            continue
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2)
        for px, py in pixels if markers else ():
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=color)
        draw.line((plot[2] - 70, legend_y + 6, plot[2] - 55, legend_y + 6), fill=color, width=2)
        draw.text((plot[2] - 50, legend_y), label, fill="black", font=font)
        legend_y += 14


def save_curves_png(history, path, size=(800, 320)) -> None:
    """Loss and accuracy per epoch (and one panel per extra metric), train and validation, as a PNG.

    size is that of the two-panel figure; each extra metric adds a panel of the same width.
    """
    Image, ImageDraw, font = _pil()
    names = ["loss", "accuracy"] + list(getattr(history, "metric_names", []))
    panel = size[0] // 2
    image = Image.new("RGB", (panel * len(names), size[1]), "white")
    draw = ImageDraw.Draw(image)
    epochs = history["epoch"]
    for i, name in enumerate(names):
        series = [(split, color, epochs, history[f"{split}_{name}"])
                  for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR))]
        _draw_panel(draw, font, (i * panel, 0, (i + 1) * panel, size[1]), name, series)
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


# One colour per class id (background first); classes beyond the table cycle through it.
CLASS_COLORS = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25),
                (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (128, 128, 128))


def _mask_colors(masks: np.ndarray) -> np.ndarray:
    palette = np.asarray(CLASS_COLORS, np.uint8)
    return palette[masks % len(palette)]


def save_segmentation_overlay(images, true_masks, pred_masks, path, class_names=None, scale: int = 4,
                              dim: float = 0.35, ious=None, groups: int = 2) -> None:
    """A PNG of (input, true mask, predicted mask) triples, ``groups`` triples side by side per row.

    Mask pixels of a class other than background (0) are painted in that class's colour
    (``CLASS_COLORS``); background pixels show the input darkened by ``dim``, so the shapes'
    outlines stay visible under the masks. A legend names the classes.

    Args:
        images: (N, 3, H, W) or (N, 1, H, W) values in [0, 1] (Tensor or array).
        true_masks, pred_masks: (N, H, W) class ids; ``pred_masks`` may also be (N, C, H, W) scores.
        path: the PNG file.
        class_names: names for the legend (default: the class ids).
        scale: integer enlargement of each panel.
        dim: brightness of the input under background pixels, in [0, 1].
        ious: optional per-sample numbers written under each predicted mask (e.g. mean IoU).
        groups: triples per row.
    """
    Image, ImageDraw, font = _pil()
    images, true_masks, pred_masks = _numpy(images), _numpy(true_masks), _numpy(pred_masks)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"save_segmentation_overlay: images must be (N, 1|3, H, W), got shape {images.shape}")
    if pred_masks.ndim == 4:
        pred_masks = pred_masks.argmax(axis=1)
    n, _, h, w = images.shape
    for name, masks in (("true_masks", true_masks), ("pred_masks", pred_masks)):
        if masks.shape != (n, h, w):
            raise ValueError(f"save_segmentation_overlay: {name} must be {(n, h, w)}, got {masks.shape}")
    if ious is not None and len(ious) != n:
        raise ValueError(f"save_segmentation_overlay: ious must hold {n} values, got {len(ious)}")
    groups = max(1, min(int(groups), n))
    rgb = np.clip(images, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0
    if rgb.shape[3] == 1:
        rgb = np.repeat(rgb, 3, axis=3)
    num_classes = int(max(true_masks.max(initial=0), pred_masks.max(initial=0))) + 1
    names = list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]
    ph, pw, pad, gap, header = h * scale, w * scale, 4, 12, 16
    caption = 12 if ious is not None else 0
    group_width = 3 * (pw + pad)
    width = pad + groups * group_width + (groups - 1) * gap
    rows = -(-n // groups)
    legend = 14 * (-(-len(names) // 4))
    canvas = Image.new("RGB", (width, header + rows * (ph + caption + pad) + pad + legend), "white")
    draw = ImageDraw.Draw(canvas)
    for g in range(groups):
        for j, title in enumerate(("input", "true", "predicted")):
            draw.text((pad + g * (group_width + gap) + j * (pw + pad), 2), title, fill="black", font=font)
    for i in range(n):
        x0 = pad + (i % groups) * (group_width + gap)
        y = header + (i // groups) * (ph + caption + pad)
        panels = [rgb[i]]
        for masks in (true_masks, pred_masks):
            colour = _mask_colors(masks[i].astype(np.int64)).astype(np.float64)
            panels.append(np.where((masks[i] > 0)[..., None], colour, dim * rgb[i]))
        for j, panel in enumerate(panels):
            tile = Image.fromarray(panel.round().astype(np.uint8)).resize((pw, ph), Image.NEAREST)
            canvas.paste(tile, (x0 + j * (pw + pad), y))
        if ious is not None:
            draw.text((x0 + 2 * (pw + pad), y + ph), f"IoU {float(ious[i]):.2f}", fill="black", font=font)
    y0 = header + rows * (ph + caption + pad)
    for c, name in enumerate(names):
        x, y = pad + (c % 4) * (width // 4), y0 + (c // 4) * 14
        draw.rectangle((x, y + 2, x + 10, y + 12), fill=CLASS_COLORS[c % len(CLASS_COLORS)], outline="black")
        draw.text((x + 14, y + 1), name, fill="black", font=font)
    canvas.save(path, format="PNG")


def save_gan_curves_png(steps, path, size=(800, 320)) -> None:
    """GAN training per generator step: mean D(x) and D(G(z)) (left), d_loss and g_loss (right).

    Args:
        steps: a mapping with the lists ``step``, ``d_real``, ``d_fake``, ``d_loss``, ``g_loss``
            (a :class:`striate.train.GANHistory`'s ``steps``).
        path: the PNG file.
    """
    Image, ImageDraw, font = _pil()
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    half, xs = size[0] // 2, steps["step"]
    panels = (("D output (probability)", (("D(x)", "d_real", GOOD_COLOR), ("D(G(z))", "d_fake", BAD_COLOR))),
              ("loss", (("d_loss", "d_loss", TRAIN_COLOR), ("g_loss", "g_loss", VAL_COLOR))))
    for left, (title, lines) in zip((0, half), panels):
        series = [(label, color, xs, steps[key]) for label, key, color in lines]
        _draw_panel(draw, font, (left, 0, left + half, size[1]), title, series, xlabel="G step",
                    markers=len(xs) <= 50)
    image.save(path, format="PNG")


def save_image_grid(images, path, nrow: int = 8, value_range=(-1.0, 1.0), padding: int = 2,
                    scale: int = 1) -> None:
    """Tile images into one PNG, ``nrow`` per row, like ``torchvision.utils.save_image``.

    Args:
        images: (N, C, H, W) with C in (1, 3), or (N, H, W) (Tensor or array).
        path: the PNG file.
        nrow: images per row.
        value_range: (low, high) mapped to black and white; values outside are clipped.
        padding: pixels of black between and around the images.
        scale: each image is enlarged by this integer factor (nearest neighbour).
    """
    Image, _, _ = _pil()
    images = _numpy(images).astype(np.float64)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError(f"save_image_grid: images must be a non-empty (N, H, W) or (N, 1|3, H, W), "
                         f"got shape {images.shape}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"save_image_grid: value_range must be (low, high) with high > low, got {value_range!r}")
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"save_image_grid: nrow must be a positive int, got {nrow!r}")
    n, c, h, w = images.shape
    pixels = (np.clip((images - low) / (high - low), 0.0, 1.0) * 255).round().astype(np.uint8)
    pixels = pixels.repeat(scale, axis=2).repeat(scale, axis=3)
    h, w = h * scale, w * scale
    cols, rows = min(nrow, n), math.ceil(n / nrow)
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), dtype=np.uint8)
    for k in range(n):
        y, x = padding + (k // nrow) * (h + padding), padding + (k % nrow) * (w + padding)
        grid[y:y + h, x:x + w] = pixels[k].transpose(1, 2, 0)
    Image.fromarray(grid[:, :, 0] if c == 1 else grid).save(path, format="PNG")
