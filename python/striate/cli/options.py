"""Options and settings shared by the ``striate`` commands (see :mod:`striate.cli`)."""
from __future__ import annotations

import argparse

from ..models.registry import list_models
from . import gan as cli_gan

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


def check_device(device: str, op: str) -> str:
    """device, after checking that "cuda" has a usable GPU behind it."""
    if device == "cuda":
        from .. import cuda

        if not cuda.is_available():
            raise ValueError(f"{op}: --device cuda: no usable GPU here (striate.cuda.is_available() is "
                             "False: no CUDA build, driver or device); use --device cpu")
    return device
