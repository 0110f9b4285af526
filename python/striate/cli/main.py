"""The ``striate`` command line (also ``python -m striate``).

    striate train --model lenet5 --data mnist5k --epochs 5 --batch-size 64 \\
                  --augment flip,rotate,shift,scale --out runs/x [--lr --optimizer --seed --threads]
    striate train --task segment --model unet|segnet --data shapes --epochs 12 --out runs/seg
    striate train --data DIR --model resnet18 --image-size 32 --out runs/ft   # your own images:
    striate predict --checkpoint runs/ft/last.safetensors --images a.jpg     # see striate.cli.folder
    striate eval --checkpoint runs/x/last.safetensors    # accuracy, or mean IoU for segmentation
    striate train --task gan|cgan|superres|lapgan|stackgan --out runs/g   # see striate.cli.gan
    striate sample --checkpoint runs/g --n 64 --out grid.png [--label 7] [--caption "..."]
    striate demo                      # lenet5 on MNIST5k; last line "test accuracy: 0.XXXX"
    striate bench [runner options]    # benchmarks/run.py, when the source checkout is present

A run folder holds ``last.safetensors`` (the resumable checkpoint of
:func:`striate.train.fit`, with the run's settings under ``"meta"`` so that
``eval`` can rebuild the model), ``history.json``, ``curves.png``,
``confusion.png`` and ``predictions.png`` (classification) or
``overlay_epochNNN.png`` per epoch and ``overlay.png`` (segmentation: input, true
mask and predicted mask of fixed held-out images). The model names come
from ``striate.models.registry``; datasets and trainers are imported inside the commands
(``--help`` takes about 0.4 s).

Errors: a usage error exits 2 (argparse). Bad input (a missing, corrupt or unfitting
checkpoint, an unusable ``--out``, a bad option value: the expected error types in
``EXPECTED_ERRORS``) exits 1 with one line ``striate: error: ...`` on stderr; Ctrl-C exits
130 with one line. ``--debug`` (before or after the command) shows the traceback instead.
Any other exception is a bug in striate and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import bench as cli_bench
from . import evaluate as cli_eval
from . import folder as cli_folder
from . import gan as cli_gan
from . import train as cli_train
from .options import (DEBUG_HELP, ERROR_LINE_CHARS, EXPECTED_ERRORS, MODELS, _add_device_option,
                      _add_training_options, _positive_int)


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
        cli_train.run_training(args)
    elif args.command == "eval":
        cli_eval.run_eval(args)
    elif args.command == "sample":
        cli_gan.sample(args)
    elif args.command == "predict":
        cli_folder.run_predict(args)
    elif args.command == "bench":
        return cli_bench.run_bench(args)
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
