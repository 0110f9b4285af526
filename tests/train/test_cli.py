"""The ``striate`` command line: argument parsing, ``python -m striate``, a tiny train + eval run,
and errors (bad input: one line ``striate: error: ...`` and status 1; ``--debug``; Ctrl-C)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from striate import cli
from striate.cli import bench as cli_bench
from striate.cli import evaluate as cli_eval
from striate.cli import train as cli_train
from tests.checks import cli_error


def test_parser_reads_the_train_command():
    args = cli.build_parser().parse_args(
        ["train", "--model", "lenet5", "--data", "mnist5k", "--epochs", "3", "--batch-size", "16",
         "--augment", "flip,rotate,shift,scale", "--out", "runs/x", "--lr", "0.01", "--optimizer", "sgd",
         "--seed", "4", "--threads", "2"])
    cli_train._resolve_defaults(args)
    assert (args.command, args.model, args.epochs, args.batch_size, args.out) == ("train", "lenet5", 3, 16,
                                                                                  "runs/x")
    assert args.augment == ["flip", "rotate", "shift", "scale"]
    assert (args.lr, args.optimizer, args.seed, args.threads, args.schedule) == (0.01, "sgd", 4, 2, "none")
    demo = cli.build_parser().parse_args(["demo"])
    assert (demo.model, demo.out, demo.lr, demo.schedule) == ("lenet5", "runs/demo", 2e-3, "cosine")
    evaluate = cli.build_parser().parse_args(["eval", "--checkpoint", "runs/x/last.safetensors"])
    assert evaluate.data is None and evaluate.model is None  # both read from the checkpoint
    segment = cli.build_parser().parse_args(["train", "--task", "segment", "--model", "segnet"])
    cli_train._resolve_defaults(segment)
    assert (segment.task, segment.model, segment.data, segment.epochs, segment.schedule) == \
        ("segment", "segnet", "shapes", 20, "cosine")
    assert segment.lr == 3e-3
    sgd = cli.build_parser().parse_args(["train", "--task", "segment", "--optimizer", "sgd"])
    cli_train._resolve_defaults(sgd)
    assert sgd.lr is None  # _optimizer then takes DEFAULT_LR["sgd"], not Adam's tuned rate
    plain = cli.build_parser().parse_args(["train"])
    cli_train._resolve_defaults(plain)
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
    monkeypatch.setattr(cli_bench, "find_bench_runner", lambda: None)
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
    monkeypatch.setattr(cli_bench, "find_bench_runner", lambda: runner)
    monkeypatch.setattr(cli_bench.subprocess, "call", lambda command, cwd: calls.append((command, cwd)) or 0)
    assert cli.main(["bench", "--only", "epoch", "--quick"]) == 0
    assert calls == [([sys.executable, str(runner), "--only", "epoch", "--quick"], str(tmp_path))]


# ------------------------------------------------------------------ errors: one line, exit 1
def _lenet_checkpoint(path, **extra):
    import striate as st
    from striate import models

    st.save({"epoch": 1, "model": models.lenet5().state_dict(), "meta": {"task": "classify", "model": "lenet5"},
             **extra}, path)
    return path


def test_eval_of_a_missing_or_corrupt_checkpoint_is_one_line(tmp_path):
    missing = tmp_path / "missing.safetensors"
    assert cli_error(["eval", "--checkpoint", str(missing)]) == \
        f"striate: error: {missing}: No such file or directory"
    assert cli_error(["eval", "--checkpoint", str(tmp_path)]) == f"striate: error: {tmp_path}: Is a directory"
    garbage = tmp_path / "garbage"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    assert cli_error(["eval", "--checkpoint", str(garbage)]).startswith(f"striate: error: load: {garbage} ")
    raw = _lenet_checkpoint(tmp_path / "real.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[:len(raw) // 2])
    message = cli_error(["eval", "--checkpoint", str(cut)])
    assert message.startswith(f"striate: error: load: {cut}: tensor ") and "truncated" in message


def test_eval_of_a_checkpoint_that_is_not_a_model_is_one_line(tmp_path):
    import striate as st

    for name, obj in (("flat", {"w": st.tensor(np.ones(3, np.float32))}), ("list", [1, 2]),
                      ("meta_list", {"model": {}, "meta": [1]})):
        st.save(obj, tmp_path / f"{name}.safetensors")
        assert "holds no model state" in cli_error(["eval", "--checkpoint", str(tmp_path / f"{name}.safetensors")])
    st.save({"G": {}, "meta": {"task": "gan"}}, tmp_path / "gan.safetensors")
    assert "is a gan run; draw from it with `striate sample" in \
        cli_error(["eval", "--checkpoint", str(tmp_path / "gan.safetensors")])
    st.save({"model": {}, "meta": {"task": "translate"}}, tmp_path / "task.safetensors")
    assert "records an unknown task 'translate'" in cli_error(["eval", "--checkpoint",
                                                            str(tmp_path / "task.safetensors")])
    st.save({"model": {"conv1.weight": np.ones(2, np.float32)}, "meta": {"model": "lenet5"}},
            tmp_path / "other.safetensors")
    message = cli_error(["eval", "--checkpoint", str(tmp_path / "other.safetensors")])
    assert message.startswith(f"striate: error: eval: {tmp_path / 'other.safetensors'} does not fit LeNet5: ")
    _lenet_checkpoint(tmp_path / "lenet.safetensors")
    message = cli_error(["eval", "--checkpoint", str(tmp_path / "lenet.safetensors"), "--model", "unet"])
    assert "does not fit UNet: Error(s) in loading state_dict for UNet: Missing key(s)" in message
    assert message.endswith(" ... (--debug shows all of it)") and len(message) < 1100
    st.save({"model": {}, "meta": {"model": "resnet999"}}, tmp_path / "unknown.safetensors")
    assert "unknown model 'resnet999'" in cli_error(["eval", "--checkpoint", str(tmp_path / "unknown.safetensors")])


def test_resume_without_or_with_a_corrupt_checkpoint_is_one_line(tmp_path):
    out = tmp_path / "run"
    message = cli_error(["train", "--resume", "--out", str(out), "--no-progress"])
    assert message == (f"striate: error: train: --resume: there is no last.safetensors in '{out}' to continue "
                       "from; check --out, or leave out --resume to start afresh")
    assert not out.exists()
    out.mkdir()
    (out / "last.safetensors").write_bytes(b"\x80\x04not a checkpoint.")
    message = cli_error(["train", "--resume", "--out", str(out), "--limit", "64", "--no-progress", "--threads", "1"])
    assert message.startswith(f"striate: error: load: {out / 'last.safetensors'} looks like a pickle file")
    _lenet_checkpoint(out / "last.safetensors")  # a model's state, but not fit's whole checkpoint
    message = cli_error(["train", "--resume", "--out", str(out), "--limit", "64", "--no-progress", "--threads", "1"])
    assert message == (f"striate: error: fit: {out / 'last.safetensors'} is not a checkpoint of fit: it lacks "
                       "optimizer, scheduler, rng, loader, history")


@pytest.mark.parametrize("task", ["classify", "segment"])
def test_an_out_folder_that_cannot_be_made_is_one_line_before_any_work(tmp_path, task, capsys):
    (tmp_path / "file").write_text("a file, not a folder")
    out = tmp_path / "file" / "run"
    assert cli_error(["train", "--task", task, "--out", str(out), "--no-progress"]) == \
        f"striate: error: {out}: Not a directory"
    assert capsys.readouterr().out == ""  # nothing was loaded or trained


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tmp_path, monkeypatch):
    missing = str(tmp_path / "missing.safetensors")
    for argv in (["--debug", "eval", "--checkpoint", missing], ["eval", "--checkpoint", missing, "--debug"]):
        with pytest.raises(FileNotFoundError):
            cli.main(argv)

    def bug(args):
        raise RuntimeError("an internal invariant broke")

    monkeypatch.setattr(cli_eval, "run_eval", bug)
    with pytest.raises(RuntimeError, match="an internal invariant broke"):
        cli.main(["eval", "--checkpoint", missing])


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_eval, "run_eval", interrupted)
    with pytest.raises(SystemExit) as exc:
        cli.main(["eval", "--checkpoint", "x"])
    assert exc.value.code == 130 and capsys.readouterr().err == "striate: interrupted\n"
    with pytest.raises(KeyboardInterrupt):
        cli.main(["eval", "--checkpoint", "x", "--debug"])


def test_python_m_striate_reports_an_error_in_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.safetensors"
    out = subprocess.run([sys.executable, "-m", "striate", "eval", "--checkpoint", str(missing)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1] == f"striate: error: {missing}: No such file or directory"
