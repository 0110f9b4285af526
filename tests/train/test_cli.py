"""The ``striate`` command line: argument parsing, ``python -m striate``, and a tiny train + eval run."""
from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

from striate import cli


def test_parser_reads_the_train_command():
    args = cli.build_parser().parse_args(
        ["train", "--model", "lenet5", "--data", "mnist5k", "--epochs", "3", "--batch-size", "16",
         "--augment", "flip,rotate,shift,scale", "--out", "runs/x", "--lr", "0.01", "--optimizer", "sgd",
         "--seed", "4", "--threads", "2"])
    cli._resolve_defaults(args)
    assert (args.command, args.model, args.epochs, args.batch_size, args.out) == ("train", "lenet5", 3, 16,
                                                                                  "runs/x")
    assert args.augment == ["flip", "rotate", "shift", "scale"]
    assert (args.lr, args.optimizer, args.seed, args.threads, args.schedule) == (0.01, "sgd", 4, 2, "none")
    demo = cli.build_parser().parse_args(["demo"])
    assert (demo.model, demo.out, demo.lr, demo.schedule) == ("lenet5", "runs/demo", 2e-3, "cosine")
    evaluate = cli.build_parser().parse_args(["eval", "--checkpoint", "runs/x/last.safetensors"])
    assert evaluate.data is None and evaluate.model is None  # both read from the checkpoint
    segment = cli.build_parser().parse_args(["train", "--task", "segment", "--model", "segnet"])
    cli._resolve_defaults(segment)
    assert (segment.task, segment.model, segment.data, segment.epochs, segment.schedule) == \
        ("segment", "segnet", "shapes", 20, "cosine")
    assert segment.lr == 3e-3
    sgd = cli.build_parser().parse_args(["train", "--task", "segment", "--optimizer", "sgd"])
    cli._resolve_defaults(sgd)
    assert sgd.lr is None  # _optimizer then takes DEFAULT_LR["sgd"], not Adam's tuned rate
    plain = cli.build_parser().parse_args(["train"])
    cli._resolve_defaults(plain)
    assert (plain.task, plain.model, plain.data, plain.epochs, plain.batch_size) == \
        ("classify", "lenet5", "mnist5k", 5, 64)


@pytest.mark.parametrize("argv", [["train", "--augment", "blur"], ["train", "--epochs", "0"],
                                  ["train", "--optimizer", "rmsprop"], ["eval"], []])
def test_parser_rejects_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(argv)
    assert exc.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize("argv", [["train", "--task", "segment", "--model", "lenet5"],
                                  ["train", "--task", "classify", "--data", "shapes"]])
def test_model_and_data_must_fit_the_task(argv):
    with pytest.raises(SystemExit, match="is not a"):
        cli.main(argv + ["--no-progress"])


def test_tiny_segmentation_train_then_eval(tmp_path, capsys):
    out = tmp_path / "seg"
    assert cli.main(["train", "--task", "segment", "--model", "segnet", "--epochs", "2", "--limit", "64",
                     "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("mean IoU: ") and lines[-3].startswith("per-class IoU: background ")
    for name in ("curves.png", "overlay.png", "overlay_epoch001.png", "overlay_epoch002.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG"
    assert cli.main(["eval", "--checkpoint", str(out / "last.safetensors"), "--threads", "1"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == lines[-1]


def test_python_m_striate_help():
    out = subprocess.run([sys.executable, "-m", "striate", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    for command in ("train", "eval", "demo", "bench"):
        assert command in out.stdout


def test_bench_without_a_checkout_says_so(monkeypatch, capsys):
    monkeypatch.setattr(cli, "find_bench_runner", lambda: None)
    assert cli.main(["bench"]) == 2
    assert "benchmarks/run.py was not found" in capsys.readouterr().err


def test_tiny_train_then_eval(tmp_path, capsys):
    data = pytest.importorskip("striate.data")
    if not hasattr(data, "MNIST5k"):
        pytest.skip("striate.data.MNIST5k is not available")
    pytest.importorskip("striate.models")
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--out", str(out),
                     "--no-progress", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("test accuracy: ") and len(lines[-1].split(": ")[1]) == 6
    for name in ("curves.png", "confusion.png", "predictions.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG"
    assert (out / "history.json").is_file()
    assert cli.main(["eval", "--checkpoint", str(out / "last.safetensors"), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "loss: " in printed and "accuracy: " in printed
    assert printed.strip().splitlines()[-1].split(": ")[1] == lines[-1].split(": ")[1]


def test_main_rejects_unknown_options_but_passes_them_to_the_bench_runner(monkeypatch, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--bogus"])
    capsys.readouterr()
    runner = tmp_path / "benchmarks" / "run.py"
    calls = []
    monkeypatch.setattr(cli, "find_bench_runner", lambda: runner)
    monkeypatch.setattr(cli.subprocess, "call", lambda command, cwd: calls.append((command, cwd)) or 0)
    assert cli.main(["bench", "--only", "epoch", "--quick"]) == 0
    assert calls == [([sys.executable, str(runner), "--only", "epoch", "--quick"], str(tmp_path))]
