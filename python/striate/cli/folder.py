"""The command line's classification on a user's own images (see :mod:`striate.cli`).

    striate train --data DIR --model resnet18 --image-size 32 --val-fraction 0.25 --out runs/ft
                  [--pretrained FILE [--freeze-backbone]]
    striate eval --checkpoint runs/ft/last.safetensors [--data DIR]
    striate predict --checkpoint runs/ft/last.safetensors --images a.jpg b.png | DIR [--topk 3]

``DIR`` holds one sub-folder of images per class (PNG, JPEG, BMP, any size and
mode; ``--image-size S`` resizes to SxS). With ``DIR/train`` and ``DIR/val``
those are the split; otherwise a random ``--val-fraction`` of the images
(fixed by ``--seed``) is held out, and ``eval`` draws the same split again from
the run's recorded settings. Grey images become RGB for networks that want 3
channels (AlexNet, VGG, ResNet); LeNet-5 and the Inception net take the
images' own channel count.
"""
from __future__ import annotations

import os

import numpy as np

from ..models.registry import get_model, input_channels
from . import options

from ..data.datasets import _IMAGE_EXTENSIONS as IMAGE_SUFFIXES


def _image_size(size):
    return None if size is None else (int(size), int(size))


def folder_split(root, image_size=None, val_fraction=0.2, seed=0):
    """(train images, train labels, val images, val labels, class names) from a class folder.

    Raises:
        ValueError: a missing or empty folder, a class without images, an unreadable image,
            images of different sizes without ``image_size``, too few images to split, or
            ``DIR/train`` and ``DIR/val`` with different classes (each names the problem).
    """
    from ..data import ImageFolder

    size = _image_size(image_size)

    train_dir, val_dir = os.path.join(root, "train"), os.path.join(root, "val")
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        train, val = _read(ImageFolder, train_dir, size=size), _read(ImageFolder, val_dir, size=size)
        if train.classes != val.classes:
            raise ValueError(f"train: {train_dir!r} has classes {train.classes} but {val_dir!r} has "
                             f"{val.classes}; both need the same class folders")
        x_train, x_val = _same_channels(train.x.numpy(), val.x.numpy())
        return x_train, train.y.numpy(), x_val, val.y.numpy(), list(train.classes)
    _check_fraction(val_fraction)
    full = _read(ImageFolder, root, size=size)
    train_idx, val_idx = _split(root, len(full), val_fraction, seed)
    x, y = full.x.numpy(), full.y.numpy()
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx], list(full.classes)


def _read(dataset, *args, size):
    """dataset(*args, size=size), its advice to pass size=(H, W) given in this command line's terms."""
    try:
        return dataset(*args, size=size)
    except ValueError as exc:
        raise ValueError(str(exc).replace("pass size=(H, W) to resize", "pass --image-size S to resize "
                                          "them all to SxS")) from None


def _check_fraction(val_fraction) -> None:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train: --val-fraction must lie strictly between 0 and 1, got {val_fraction}")


def _split(root, n, val_fraction, seed):
    """(train indices, val indices): a seeded random val_fraction of n held out, both sorted."""
    n_val = max(1, int(round(n * val_fraction)))
    if n - n_val < 1:
        raise ValueError(f"train: {root!r} holds {n} image(s): too few to hold out a validation share "
                         f"of {val_fraction} and still train; add images or give DIR/train and DIR/val")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def segment_folder_split(root, image_size=None, val_fraction=0.2, seed=0):
    """(train images, train masks, val images, val masks, number of classes) from
    ``DIR/images`` + ``DIR/masks`` (``SegmentationFolder``'s layout: PNG masks whose pixel values
    are class ids, matched to the images by file stem), split as :func:`folder_split` does, or
    from ``DIR/train/{images,masks}`` and ``DIR/val/{images,masks}``. Images come in RGB."""
    from ..data import SegmentationFolder

    size = _image_size(image_size)

    def pairs(folder):
        data = _read(SegmentationFolder, os.path.join(folder, "images"), os.path.join(folder, "masks"), size=size)
        return data.x.numpy(), data.y.numpy()

    train_dir, val_dir = os.path.join(root, "train"), os.path.join(root, "val")
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        (x_train, y_train), (x_val, y_val) = pairs(train_dir), pairs(val_dir)
    else:
        _check_fraction(val_fraction)
        x, y = pairs(root)
        train_idx, val_idx = _split(root, len(x), val_fraction, seed)
        x_train, y_train, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    x_train, x_val = (np.repeat(a, 3, axis=1) if a.shape[1] == 1 else a for a in (x_train, x_val))
    if x_train.shape[1:] != x_val.shape[1:]:
        raise ValueError(f"train: the train images are {x_train.shape[2]}x{x_train.shape[3]} but the val images "
                         f"{x_val.shape[2]}x{x_val.shape[3]}; pass --image-size S")
    return x_train, y_train, x_val, y_val, int(max(y_train.max(), y_val.max())) + 1


def _same_channels(*arrays):
    """Grey (C=1) arrays repeated to RGB when any of them is RGB."""
    channels = max(a.shape[1] for a in arrays)
    return tuple(np.repeat(a, channels, axis=1) if a.shape[1] != channels else a for a in arrays)


def fit_channels(x, name):
    """Images with the channel count model ``name`` needs (grey repeated to RGB for 3)."""
    wanted = input_channels(name)
    if wanted is None or x.shape[1] == wanted:
        return x
    if x.shape[1] == 1:
        return np.repeat(x, wanted, axis=1)
    raise ValueError(f"{name} needs {wanted}-channel images, got {x.shape[1]} channels")


def build_classifier(name, num_classes, channels, pretrained=None, freeze_backbone=False):
    """A registry classifier for ``num_classes``; with ``pretrained``, its weights from that file
    (torchvision names; the head is replaced for the new classes, and with
    ``freeze_backbone`` only the head trains)."""
    from ..models import finetune, load_pretrained
    from ..models.pretrained import _last_linear

    kwargs = {} if input_channels(name) is not None else {"in_channels": channels}
    model = get_model(name, num_classes=num_classes, **kwargs)
    if pretrained is None:
        if freeze_backbone:
            raise ValueError("train: --freeze-backbone needs --pretrained weights (a frozen random "
                             "backbone learns nothing)")
        return model
    if not os.path.isfile(pretrained):
        raise ValueError(f"train: --pretrained {pretrained!r} is not a file")
    report = load_pretrained(model, pretrained, strict=False)
    head = _last_linear(model)[0] + "."
    problems = ([k for k in report.missing_keys + report.unexpected_keys if not k.startswith(head)]
                + [k for k, _, _ in report.mismatched_keys if not k.startswith(head)])
    if problems:
        raise ValueError(f"train: --pretrained {pretrained} does not fit {name} outside its head: "
                         + " ".join(report.describe().split()))
    return finetune(model, num_classes, freeze_backbone=freeze_backbone)


def image_files(paths):
    """The image files named by ``paths`` (files, or folders whose images are taken in name order)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise ValueError(f"predict: folder {path!r} holds no {'/'.join(IMAGE_SUFFIXES)} images")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"predict: {path!r} does not exist")
    return files


def read_images(files, image_size, channels):
    """(N, channels, S, S) float32 images in [0, 1] as training read them."""
    from ..data.datasets import _import_pil, _picture_to_array, _read_image

    Image = _import_pil()
    size = _image_size(image_size)
    arrays = []
    for path in files:
        # grey ("L") for a 1-channel run, RGB (grey replicated) for a 3-channel one, as ImageFolder reads
        arrays.append(_picture_to_array(Image, _read_image(Image, path, "predict"), channels == 1, size))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"predict: the images have different sizes {sorted(shapes)} and the run recorded "
                         "no --image-size to resize them to")
    return np.stack(arrays)


def run_predict(args) -> list:
    """Top-k classes with probabilities for each image; returns [(file, [(class, p), ...]), ...]."""
    import striate as st
    from ..train.loop import load_weights

    if args.threads is not None:
        st.set_num_threads(args.threads)
    device = options.check_device(args.device, "predict")
    files = image_files(args.images)
    state = st.load(args.checkpoint)
    meta = (state.get("meta") if isinstance(state, dict) else None) or {}
    if not (isinstance(meta, dict) and meta.get("task") == "classify" and isinstance(state.get("model"), dict)):
        raise ValueError(f"predict: {args.checkpoint} is not a classification run of `striate train`")
    classes = meta.get("classes") or [str(i) for i in range(int(meta.get("num_classes", 10)))]
    channels = int(meta.get("in_channels", 1))
    model = build_classifier(meta["model"], len(classes), channels)
    load_weights(model, state["model"], args.checkpoint, "predict")
    model.to(device).eval()
    size = meta.get("image_size") or (28 if meta.get("data") == "mnist5k" else None)
    x = fit_channels(read_images(files, size, channels), meta["model"])
    with st.no_grad():
        probs = st.nn.functional.softmax(model(st.tensor(x, device=device)), dim=1).numpy()
    k = min(args.topk, len(classes))
    results = []
    for path, p in zip(files, probs):
        top = np.argsort(-p, kind="stable")[:k]
        results.append((path, [(classes[i], float(p[i])) for i in top]))
        print(f"{path}: " + ", ".join(f"{classes[i]} {p[i]:.3f}" for i in top))
    return results
