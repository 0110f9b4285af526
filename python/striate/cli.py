"""The ``striate`` command line (also ``python -m striate``).

    striate train --model lenet5 --data mnist5k --epochs 5 --batch-size 64 \\
                  --augment flip,rotate,shift,scale --out runs/x [--lr --optimizer --seed --threads]
    striate train --task segment --model unet|segnet --data shapes --epochs 12 --out runs/seg
    striate train --data DIR --model resnet18 --image-size 32 --out runs/ft   # your own images:
    striate predict --checkpoint runs/ft/last.safetensors --images a.jpg     # see striate.cli_folder
    striate eval --checkpoint runs/x/last.safetensors    # accuracy, or mean IoU for segmentation
    striate train --task gan|cgan|superres|lapgan|stackgan --out runs/g   # see striate.cli_gan
    striate sample --checkpoint runs/g --n 64 --out grid.png [--label 7] [--caption "..."]
    striate demo                      # lenet5 on MNIST5k; last line "test accuracy: 0.XXXX"
    striate bench [runner options]    # benchmarks/run.py, when the source checkout is present

A run folder holds ``last.safetensors`` (the resumable checkpoint of
:func:`striate.train.fit`, with the run's settings under ``"meta"`` so that
``eval`` can rebuild the model), ``history.json``, ``curves.png``,
``confusion.png`` and ``predictions.png`` (classification) or
``overlay_epochNNN.png`` per epoch and ``overlay.png`` (segmentation: input, true
mask and predicted mask of fixed held-out images). ``striate.data`` and
``striate.models`` are imported inside the commands, so ``--help`` is quick.

Errors: a usage error exits 2 (argparse). Bad input (a missing, corrupt or unfitting
checkpoint, an unusable ``--out``, a bad option value: the expected error types in
``EXPECTED_ERRORS``) exits 1 with one line ``striate: error: ...`` on stderr; Ctrl-C exits
130 with one line. ``--debug`` (before or after the command) shows the traceback instead.
Any other exception is a bug in striate and keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from . import cli_folder, cli_gan
from .models.registry import list_models
from .train.loop import CHECKPOINT_NAME, load_weights

TASK_MODELS = {"classify": tuple(list_models("classify")), "segment": ("unet", "segnet")}
TASK_DATA = {"classify": ("mnist5k",), "segment": ("shapes",)}
MODELS = tuple(m for models in TASK_MODELS.values() for m in models)
DATASETS = tuple(d for data in TASK_DATA.values() for d in data)
# Segmentation on Shapes: generated sets (train seed 0, held-out test seed 1), image side 32.
SHAPES_TRAIN, SHAPES_TEST, SHAPES_SIZE, SHAPES_TEST_SEED = 4000, 500, 32, 1
OVERLAY_IMAGES = 8
GAN_MODEL_NAMES = tuple(sorted({m for names in cli_gan.GAN_MODELS.values() for m in names}))
# Per-task defaults for the options left unset on the command line ("lr" applies to Adam only).
TASK_DEFAULTS = {"classify": {"epochs": 5, "batch_size": 64, "schedule": "none"},
                 "segment": {"epochs": 20, "batch_size": 32, "schedule": "cosine", "lr": 3e-3}}
# The segmentation networks' settings (tuned for 32x32 Shapes on a 2-core CPU).
SEGMENT_MODELS = {"unet": {"depth": 3, "base": 16, "batch_norm": True}, "segnet": {"depth": 3, "width": 16}}
AUGMENTATIONS = ("flip", "rotate", "shift", "scale")
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
GRID_IMAGES = 32  # test digits in predictions.png
# Errors that bad input raises (checkpoints, paths, option values); main reports them in one line.
# KeyError: an entry missing from a hand-made checkpoint.
EXPECTED_ERRORS = (ValueError, TypeError, OSError, KeyError)
DEBUG_HELP = "on an error, show the full traceback instead of one line"
ERROR_LINE_CHARS = 1000  # longer messages (e.g. every missing key of a state dict) are cut


def _augment_list(text: str) -> list:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown augmentation(s) {unknown}; choose from "
                                         f"{','.join(AUGMENTATIONS)}")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_training_options(parser, epochs, batch_size, lr, schedule, out, task_option=True):
    if task_option:
        parser.add_argument("--task", choices=tuple(TASK_MODELS) + cli_gan.GAN_TASKS, default="classify",
                            help="classify (default), segment, or a GAN task: "
                            f"{', '.join(cli_gan.GAN_TASKS)}")
        parser.add_argument("--model", choices=MODELS + GAN_MODEL_NAMES, default=None, metavar="NAME",
                            help="network: lenet5 (default), inception_net, alexnet, vgg11...vgg19_bn, "
                            "resnet18/34/50 for classify; unet (default), segnet for segment; dcgan "
                            "(default), mlp for gan/cgan")
        parser.add_argument("--data", default=None, metavar="NAME|DIR",
                            help="dataset: mnist5k for classify and the digit GANs, shapes for segment "
                            "and stackgan (the defaults); for classify also a folder with one "
                            "sub-folder of images per class")
        parser.add_argument("--image-size", type=_positive_int, default=None, metavar="S",
                            help="--data DIR: resize every image to SxS (needed when sizes differ)")
        parser.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                            help="--data DIR without train/ and val/: hold out this share of the images, "
                            "drawn with --seed (default 0.2)")
        parser.add_argument("--pretrained", default=None, metavar="FILE",
                            help="classify: start from these weights (torchvision names: .safetensors, "
                            ".npz, or .pth with torch installed; a run's last.safetensors); the head is "
                            "replaced for the data's classes")
        parser.add_argument("--freeze-backbone", action="store_true",
                            help="with --pretrained: train only the new head")
    else:
        parser.add_argument("--model", choices=TASK_MODELS["classify"], default="lenet5",
                            help="network (default lenet5)")
        parser.add_argument("--data", choices=TASK_DATA["classify"], default="mnist5k",
                            help="dataset (default mnist5k)")
    parser.add_argument("--epochs", type=_positive_int, default=epochs,
                        help=f"epochs (default {epochs or 'per task'})")
    parser.add_argument("--batch-size", type=_positive_int, default=batch_size,
                        help=f"batch size (default {batch_size or 'per task'})")
    parser.add_argument("--augment", type=_augment_list, default=[],
                        help=f"comma-separated augmentations out of {','.join(AUGMENTATIONS)} (default none)")
    parser.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam",
                        help="optimizer (default adam)")
    parser.add_argument("--lr", type=float, default=lr,
                        help=f"learning rate (default {lr:g})" if lr is not None else
                        f"learning rate (default {DEFAULT_LR['adam']:g} for adam, "
                        f"{DEFAULT_LR['sgd']:g} for sgd with momentum 0.9)")
    parser.add_argument("--schedule", choices=("none", "cosine"), default=schedule,
                        help=f"learning-rate schedule over the epochs (default {schedule or 'per task'})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="CPU threads (default: striate's default)")
    parser.add_argument("--limit", type=_positive_int, default=None,
                        help="train on a random subset of this many images, fixed by --seed (quick runs)")
    parser.add_argument("--out", default=out, help=f"run folder (default {out})")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar or per-epoch lines")
    _add_device_option(parser)


def _add_device_option(parser):
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the network runs (default cpu; cuda needs a usable GPU)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="striate", description="Train, evaluate and benchmark striate "
                                     "image networks.")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser("train", help="train a model and write a run folder")
    _add_training_options(train, epochs=None, batch_size=None, lr=None, schedule=None, out="runs/train")
    cli_gan.add_train_options(train)
    evaluate = commands.add_parser("eval", help="evaluate a checkpoint on a dataset's test split "
                                   "(accuracy; mean IoU for segmentation)")
    evaluate.add_argument("--checkpoint", required=True, help="a last.safetensors written by train")
    evaluate.add_argument("--data", default=None, metavar="NAME|DIR",
                          help="dataset (default: the one recorded in the checkpoint; a run trained on "
                          "a folder is scored on its recorded validation split, another folder whole)")
    evaluate.add_argument("--model", choices=MODELS, default=None, metavar="NAME",
                          help="network (default: the one recorded in the checkpoint)")
    evaluate.add_argument("--val-fraction", type=float, default=None, metavar="F",
                          help="a folder run's held-out share (default: the recorded one)")
    evaluate.add_argument("--seed", type=int, default=None, help="a folder run's split seed (default: the recorded one)")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256, help="batch size (default 256)")
    evaluate.add_argument("--threads", type=_positive_int, default=None, help="CPU threads")
    _add_device_option(evaluate)
    predict = commands.add_parser("predict", help="the top classes of images under a classification run")
    predict.add_argument("--checkpoint", required=True, help="a last.safetensors written by train")
    predict.add_argument("--images", nargs="+", required=True, metavar="FILE|DIR",
                         help="image files, or folders whose images are all taken")
    predict.add_argument("--topk", type=_positive_int, default=3, help="classes shown per image (default 3)")
    predict.add_argument("--threads", type=_positive_int, default=None, help="CPU threads")
    _add_device_option(predict)
    demo = commands.add_parser("demo", help="train lenet5 on MNIST5k and report the test accuracy")
    # Tuned on the 2-core machine: test accuracy 0.977 with seed 0 in 80 s (5 epochs of batch 64: ~0.96)
    _add_training_options(demo, epochs=15, batch_size=32, lr=2e-3, schedule="cosine", out="runs/demo",
                          task_option=False)
    cli_gan.add_sample_parser(commands)
    for command in commands.choices.values():  # --debug also after the command (SUPPRESS: keep the global one)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    bench = commands.add_parser("bench", help="run the benchmark runner (benchmarks/run.py)")
    bench.add_argument("runner_args", nargs=argparse.REMAINDER,
                       help="passed to benchmarks/run.py (e.g. --threads 2 --quick)")
    return parser


# ------------------------------------------------------------------------------------ data, model
def _datasets(name: str, limit=None, seed=0):
    """(train, test) datasets; with limit, a fixed random subset of the training set."""
    import numpy as np

    from .data import MNIST5k, TensorDataset

    if name != "mnist5k":
        raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    train, test = MNIST5k(train=True), MNIST5k(train=False)
    if limit is not None and limit < len(train):
        pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:limit]).astype(np.int64)
        train = TensorDataset(*train.get_batch(pick))
    return train, test


def _classification_sets(model, data, limit=None, seed=0, image_size=None, val_fraction=0.2):
    """(train, test, class names) for classify: MNIST5k or a folder (its split), the images with
    the channels ``model`` needs."""
    from .data import TensorDataset

    if data in DATASETS:
        train, test = _datasets(data, limit, seed)
        classes = [str(d) for d in range(10)]
        x_train, y_train, x_test, y_test = train.x.numpy(), train.y.numpy(), test.x.numpy(), test.y.numpy()
    else:
        x_train, y_train, x_test, y_test, classes = cli_folder.folder_split(data, image_size, val_fraction, seed)
        if limit is not None and limit < len(x_train):
            import numpy as np

            pick = np.sort(np.random.default_rng(seed).permutation(len(x_train))[:limit])
            x_train, y_train = x_train[pick], y_train[pick]
    fit = cli_folder.fit_channels
    return (TensorDataset(fit(x_train, model), y_train), TensorDataset(fit(x_test, model), y_test), classes)


def _check_input_fits(model, dataset, name, device) -> None:
    """One image through the network first, so that an image size it cannot take is one line
    before any training (LeNet-5 wants 28x28; the others need enough pixels to pool)."""
    import striate as st

    x = dataset.get_batch([0])[0].to(device)
    was_training = model.training
    model.eval()
    try:
        with st.no_grad():
            model(x)
    except ValueError as exc:
        raise ValueError(f"train: {name} cannot run on {'x'.join(map(str, x.shape[1:]))} images ({exc}); "
                         "choose another --image-size (lenet5 wants 28)") from None
    finally:
        model.train(was_training)


def _augmentation(names):
    """A batch transform for the named augmentations, or None."""
    if not names:
        return None
    from .data import transforms as T

    makers = {"flip": lambda: T.RandomHorizontalFlip(), "rotate": lambda: T.RandomRotation(10.0),
              "shift": lambda: T.RandomTranslate(0.1), "scale": lambda: T.RandomScale((0.9, 1.1))}
    return T.Compose([makers[n]() for n in names])


def _model(name: str, num_classes=None, model_args=None, in_channels=None):
    """A fresh network; segmentation networks take 3 input channels and num_classes (default 4),
    classifiers num_classes (default 10) and, for LeNet-5 and the Inception net, in_channels
    (default 1)."""
    from .models import get_model

    if name in SEGMENT_MODELS:
        return get_model(name, in_channels=3, num_classes=num_classes or 4, **(model_args or SEGMENT_MODELS[name]))
    return cli_folder.build_classifier(name, num_classes or 10, in_channels or 1)


def _is_folder_data(task: str, data) -> bool:
    return task == "classify" and data not in DATASETS and data is not None


def _task_of_model(name: str) -> str:
    task = next((task for task, names in TASK_MODELS.items() if name in names), None)
    if task is None:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return task


def _resolve_defaults(args) -> None:
    """Fill the per-task defaults and check that model and data fit the task."""
    task = getattr(args, "task", "classify")
    args.task = task
    args.model = args.model or TASK_MODELS[task][0]
    args.data = args.data or TASK_DATA[task][0]
    for key, value in TASK_DEFAULTS[task].items():
        if key == "lr" and args.optimizer != "adam":
            continue  # the tuned rate is Adam's; SGD keeps DEFAULT_LR["sgd"]
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model not in TASK_MODELS[task]:
        raise ValueError(f"train: --model {args.model} is not a {task} model; "
                         f"choose from {', '.join(TASK_MODELS[task])}")
    if _is_folder_data(task, args.data):
        if not os.path.isdir(args.data):
            raise ValueError(f"train: --data {args.data!r} is neither a dataset ({', '.join(DATASETS)}) "
                             f"nor a folder{' (it does not exist)' if not os.path.exists(args.data) else ''}")
    elif args.data not in TASK_DATA[task]:
        raise ValueError(f"train: --data {args.data} is not a {task} dataset; "
                         f"choose from {', '.join(TASK_DATA[task])}"
                         + (" or a folder of class folders" if task == "classify" else ""))


def _optimizer(name: str, params, lr):
    from . import optim

    lr = DEFAULT_LR[name] if lr is None else lr
    return optim.Adam(params, lr=lr) if name == "adam" else optim.SGD(params, lr=lr, momentum=0.9)


def _set_threads(threads):
    if threads is not None:
        import striate

        striate.set_num_threads(threads)


# --------------------------------------------------------------------------------------- commands
def run_training(args) -> float:
    """Train as args say, write the run folder, print the test results.

    Returns:
        The test accuracy (classify) or the held-out mean IoU (segment).
    """
    if args.resume:
        _check_resumable(args.out)
    cli_folder.check_device(args.device, args.command)
    if getattr(args, "task", None) in cli_gan.GAN_TASKS:
        if args.device != "cpu":
            raise ValueError(f"train: --device {args.device} is not wired into the GAN tasks yet; "
                             "they train on the CPU")
        return cli_gan.run(args)
    _resolve_defaults(args)
    os.makedirs(args.out, exist_ok=True)  # an unusable --out fails now, not after the first epoch
    if args.task == "segment":
        return run_segmentation(args)
    return run_classification(args)


def _check_resumable(out) -> None:
    """--resume needs a checkpoint in the run folder (fit's, or a stage's or level's one folder down)."""
    folders = [out] + ([os.path.join(out, d) for d in sorted(os.listdir(out))] if os.path.isdir(out) else [])
    if not any(os.path.isfile(os.path.join(folder, CHECKPOINT_NAME)) for folder in folders):
        raise ValueError(f"train: --resume: there is no {CHECKPOINT_NAME} in {out!r} to continue from; "
                         "check --out, or leave out --resume to start afresh")


def run_classification(args) -> float:
    import striate as st
    from .data import DataLoader
    from .train import confusion_matrix, fit, save_confusion_png, save_prediction_grid

    _set_threads(args.threads)
    st.manual_seed(args.seed)
    folder = {"image_size": getattr(args, "image_size", None), "val_fraction": getattr(args, "val_fraction", 0.2)}
    train_set, test_set, classes = _classification_sets(args.model, args.data, args.limit, args.seed, **folder)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              transform=_augmentation(args.augment))
    test_loader = DataLoader(test_set, batch_size=256)
    channels = train_set.x.shape[1]
    model = cli_folder.build_classifier(args.model, len(classes), channels, getattr(args, "pretrained", None),
                                        getattr(args, "freeze_backbone", False)).to(args.device)
    _check_input_fits(model, train_set, args.model, args.device)
    optimizer = _optimizer(args.optimizer, [p for p in model.parameters() if p.requires_grad], args.lr)
    scheduler = (st.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
                 if args.schedule == "cosine" else None)
    meta = {"task": "classify", "model": args.model, "data": args.data, "optimizer": args.optimizer,
            "lr": optimizer.param_groups[0]["lr"], "batch_size": args.batch_size,
            "augment": ",".join(args.augment), "schedule": args.schedule, "seed": args.seed,
            "epochs": args.epochs, "limit": args.limit}
    if args.data not in DATASETS:  # a folder: what eval and predict need to read it again
        meta.update(folder, classes=classes, num_classes=len(classes), in_channels=channels,
                    pretrained=getattr(args, "pretrained", None),
                    freeze_backbone=getattr(args, "freeze_backbone", False))
    print(f"training {args.model} on {args.data} ({len(train_set)} train / {len(test_set)} test images"
          f"{', ' + str(len(classes)) + ' classes' if args.data not in DATASETS else ''}), "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {meta['lr']:g} "
          f"(schedule {args.schedule}), "
          f"augment: {meta['augment'] or 'none'}, {st.get_num_threads()} threads", flush=True)
    began = time.perf_counter()
    history = fit(model, train_loader, optimizer, args.epochs, val_loader=test_loader, scheduler=scheduler,
                  checkpoint_dir=args.out, progress=args.progress, resume=args.resume, meta=meta)
    seconds = time.perf_counter() - began
    history.save(args.out)
    save_confusion_png(confusion_matrix(model, test_loader, len(classes)), os.path.join(args.out, "confusion.png"))
    images, labels = test_set.get_batch(_grid_indices(len(test_set)))
    model.eval()
    with st.no_grad():
        preds = model(images.to(args.device)).argmax(1)
    save_prediction_grid(images, labels, preds, os.path.join(args.out, "predictions.png"))
    accuracy = history.val_accuracy[-1] if len(history) else float("nan")
    print(f"training took {seconds:.1f} s; wrote {args.out}/ (last.safetensors, history.json, curves.png, "
          f"confusion.png, predictions.png)")
    print(f"test loss: {history.val_loss[-1]:.4f}" if len(history) else "test loss: nan")
    print(f"test accuracy: {accuracy:.4f}", flush=True)
    return accuracy


def segmentation_loss(logits, masks):
    """Per-pixel cross-entropy plus the soft Dice loss: the Dice term keeps the small shape
    classes from being drowned by the background (83% of Shapes' pixels)."""
    from .nn import functional as F

    return F.cross_entropy(logits, masks) + F.dice_loss(logits, masks)


def _shapes_sets(limit=None):
    """(train, held-out test) Shapes sets; different seeds, so no test image is seen in training."""
    from .data import Shapes

    return (Shapes(limit or SHAPES_TRAIN, size=SHAPES_SIZE, seed=0),
            Shapes(SHAPES_TEST, size=SHAPES_SIZE, seed=SHAPES_TEST_SEED))


def _overlay_writer(folder, test_set, names):
    """on_epoch_end for fit: overlays of fixed held-out images, per epoch and as overlay.png."""
    import shutil

    import numpy as np

    import striate as st
    from .metrics import iou
    from .train import save_segmentation_overlay

    images, masks = test_set.get_batch(np.arange(min(OVERLAY_IMAGES, len(test_set))))

    def write(epoch, model, history):
        was_training = model.training
        model.eval()
        device = next((p.device for p in model.parameters()), "cpu")
        with st.no_grad():
            logits = model(images.to(device)).to("cpu")
        model.train(was_training)
        num_classes = logits.shape[1]
        scores = [iou(logits[i:i + 1], masks[i:i + 1], num_classes)[1] for i in range(images.shape[0])]
        path = os.path.join(folder, f"overlay_epoch{epoch:03d}.png")
        save_segmentation_overlay(images, masks, logits, path, class_names=names, ious=scores)
        shutil.copyfile(path, os.path.join(folder, "overlay.png"))

    return write


def run_segmentation(args) -> float:
    import striate as st
    from .data import DataLoader
    from .metrics import MeanIoU
    from .train import fit

    _set_threads(args.threads)
    st.manual_seed(args.seed)
    train_set, test_set = _shapes_sets(args.limit)
    num_classes, names = train_set.num_classes, list(train_set.class_names)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                              transform=_augmentation(args.augment))
    test_loader = DataLoader(test_set, batch_size=100)
    model = _model(args.model, num_classes).to(args.device)
    optimizer = _optimizer(args.optimizer, model.parameters(), args.lr)
    scheduler = (st.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
                 if args.schedule == "cosine" else None)
    meta = {"task": "segment", "model": args.model, "model_args": dict(SEGMENT_MODELS[args.model]),
            "num_classes": num_classes, "data": args.data, "optimizer": args.optimizer,
            "lr": optimizer.param_groups[0]["lr"], "batch_size": args.batch_size,
            "schedule": args.schedule, "seed": args.seed, "epochs": args.epochs, "limit": args.limit}
    print(f"training {args.model} ({', '.join(f'{k}={v}' for k, v in SEGMENT_MODELS[args.model].items())}) "
          f"to segment {args.data} ({len(train_set)} train / {len(test_set)} held-out images of "
          f"{SHAPES_SIZE}x{SHAPES_SIZE}, {num_classes} classes), {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.optimizer} lr {meta['lr']:g} (schedule {args.schedule}), {st.get_num_threads()} threads",
          flush=True)
    began = time.perf_counter()
    history = fit(model, train_loader, optimizer, args.epochs, loss_fn=segmentation_loss, val_loader=test_loader,
                  scheduler=scheduler, checkpoint_dir=args.out, progress=args.progress, resume=args.resume,
                  meta=meta, metrics={"miou": MeanIoU(num_classes)},
                  on_epoch_end=_overlay_writer(args.out, test_set, names))
    seconds = time.perf_counter() - began
    history.save(args.out)
    metric = MeanIoU(num_classes)
    result = _segmentation_scores(model, test_loader, metric)
    print(f"training took {seconds:.1f} s; wrote {args.out}/ (last.safetensors, history.json, curves.png, "
          f"overlay.png, overlay_epochNNN.png)")
    _print_segmentation_scores(result, metric, names)
    return result["miou"]


def _segmentation_scores(model, loader, metric) -> dict:
    from .train import evaluate

    return evaluate(model, loader, loss_fn=segmentation_loss, metrics={"miou": metric})


def _print_segmentation_scores(result, metric, names) -> None:
    per_class = metric.per_class()
    print("per-class IoU: " + ", ".join(f"{n} {v:.4f}" for n, v in zip(names, per_class)))
    print(f"pixel accuracy: {result['accuracy']:.4f}")
    print(f"mean IoU: {result['miou']:.4f}", flush=True)


def _grid_indices(n):
    import numpy as np

    return np.linspace(0, n - 1, min(GRID_IMAGES, n)).astype(np.int64)


def run_eval(args) -> dict:
    import striate as st
    from .data import DataLoader
    from .train import evaluate

    _set_threads(args.threads)
    device = cli_folder.check_device(args.device, "eval")
    state = st.load(args.checkpoint)
    meta = (state.get("meta") if isinstance(state, dict) else None) or {}
    task = meta.get("task") if isinstance(meta, dict) else None
    if task in cli_gan.GAN_TASKS:
        raise ValueError(f"eval: {args.checkpoint} is a {task} run; draw from it with `striate sample "
                         f"--checkpoint ...` and measure it with experiments/gan_quality.py")
    if not (isinstance(state, dict) and isinstance(meta, dict) and isinstance(state.get("model"), dict)):
        raise ValueError(f"eval: {args.checkpoint} is not a checkpoint of `striate train`: it holds no "
                         "model state")
    if task is not None and task not in TASK_MODELS:
        raise ValueError(f"eval: {args.checkpoint} records an unknown task {task!r}; expected one of "
                         f"{', '.join(TASK_MODELS)}")
    name = args.model or meta.get("model")
    if name is None:
        raise ValueError(f"eval: {args.checkpoint} does not record its model; pass --model")
    task = task or _task_of_model(name)
    data = args.data or meta.get("data") or TASK_DATA[task][0]
    if _is_folder_data(task, data):
        if not os.path.isdir(data):
            raise ValueError(f"eval: --data {data!r} is neither a dataset ({', '.join(DATASETS)}) nor a folder")
    elif data not in TASK_DATA[task]:
        raise ValueError(f"eval: --data {data} is not a {task} dataset; "
                         f"choose from {', '.join(TASK_DATA[task])}")
    model = _model(name, meta.get("num_classes"), meta.get("model_args"), meta.get("in_channels"))
    load_weights(model, state["model"], args.checkpoint, "eval")
    model.to(device)
    if task == "segment":
        from .metrics import MeanIoU

        _, test_set = _shapes_sets()
        metric = MeanIoU(test_set.num_classes)
        result = _segmentation_scores(model, DataLoader(test_set, batch_size=args.batch_size), metric)
        print(f"{name} from {args.checkpoint} (epoch {state.get('epoch')}) on {data} held-out "
              f"({len(test_set)} images)")
        print(f"loss: {result['loss']:.4f}")
        _print_segmentation_scores(result, metric, test_set.class_names)
        return result
    split_args = {"val_fraction": args.val_fraction, "seed": args.seed}
    test_set, split = _eval_classification_set(name, data, {**meta, **{k: v for k, v in split_args.items()
                                                                        if v is not None}})
    result = evaluate(model, DataLoader(test_set, batch_size=args.batch_size))
    print(f"{name} from {args.checkpoint} (epoch {state.get('epoch')}) on {data} {split} "
          f"({len(test_set)} images)")
    print(f"loss: {result['loss']:.4f}")
    print(f"accuracy: {result['accuracy']:.4f}")
    return result


def _eval_classification_set(name, data, meta):
    """(test set, its description) for eval: MNIST5k's test set; the run's own folder: the validation
    split recorded in meta (same --val-fraction, --seed, --image-size); another folder: all of it,
    with the run's classes."""
    import numpy as np

    from .data import ImageFolder, TensorDataset

    if data in DATASETS:
        return _classification_sets(name, data)[1], "test"
    size = meta.get("image_size")
    if data == meta.get("data"):
        _, test_set, _ = _classification_sets(name, data, None, meta.get("seed", 0), size,
                                              meta.get("val_fraction", 0.2))
        return test_set, "validation split"
    images = ImageFolder(data, size=None if size is None else (size, size))
    classes = meta.get("classes") or [str(d) for d in range(10)]
    if list(images.classes) != list(classes):
        raise ValueError(f"eval: {data!r} has classes {images.classes} but the run was trained on {classes}")
    x = images.x.numpy()
    channels = int(meta.get("in_channels", x.shape[1]))
    if x.shape[1] != channels:
        x = np.repeat(x, channels, axis=1) if x.shape[1] == 1 else x.mean(axis=1, keepdims=True)
    return TensorDataset(cli_folder.fit_channels(x, name), images.y.numpy()), "folder"


def find_bench_runner():
    """benchmarks/run.py of the source checkout striate runs from (or the current folder), or None."""
    package = Path(__file__).resolve().parent
    for root in (package.parent.parent, Path.cwd()):
        runner = root / "benchmarks" / "run.py"
        if runner.is_file():
            return runner
    return None


def run_bench(args) -> int:
    runner = find_bench_runner()
    if runner is None:
        print("striate bench: benchmarks/run.py was not found. The benchmarks ship with the source "
              "checkout, not the installed package: clone the repository and run `striate bench` "
              "(or `python benchmarks/run.py`) from its root.", file=sys.stderr)
        return 2
    extra = [a for a in args.runner_args if a != "--"]
    return subprocess.call([sys.executable, str(runner)] + extra, cwd=str(runner.parent.parent))


def main(argv=None) -> int:
    """Run one command; returns the exit status (0, or the bench runner's).

    Raises:
        SystemExit: 2 for a usage error; ``"striate: error: <one line>"`` (status 1) for an
            expected error (see the module docstring); 130 after Ctrl-C. With ``--debug`` the
            expected errors and KeyboardInterrupt propagate unchanged.
    """
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "bench":  # everything after "bench" belongs to the runner
        args.runner_args = unknown + args.runner_args
    try:
        return _run_command(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("striate: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except EXPECTED_ERRORS as exc:
        if args.debug:
            raise
        raise SystemExit(f"striate: error: {_error_line(exc)}") from None


def _run_command(args) -> int:
    if args.command in ("train", "demo"):
        run_training(args)
    elif args.command == "eval":
        run_eval(args)
    elif args.command == "sample":
        cli_gan.sample(args)
    elif args.command == "predict":
        cli_folder.run_predict(args)
    elif args.command == "bench":
        return run_bench(args)
    return 0


def _error_line(exc: BaseException) -> str:
    """An exception as one line: ``path: No such file or directory`` for file-system errors."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
        text = f"{' -> '.join(names)}: {exc.strerror}"
    elif isinstance(exc, KeyError) and len(exc.args) == 1:
        text = f"missing entry {exc.args[0]!r}"
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= ERROR_LINE_CHARS else text[:ERROR_LINE_CHARS] + " ... (--debug shows all of it)"
