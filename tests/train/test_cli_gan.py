"""The GAN half of the command line: every task trains a tiny run, writes its files, and samples."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import striate as st
from striate import cli
from striate.cli import gan as cli_gan


def _grid_size(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


@pytest.mark.parametrize("task", cli_gan.GAN_TASKS)
def test_each_gan_task_trains_writes_its_files_and_samples(task, tmp_path, capsys):
    out = tmp_path / task
    assert cli.main(["train", "--task", task, "--epochs", "2", "--limit", "128", "--batch-size", "32",
                     "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr()
    assert f"training {task}" in printed.out and "training took" in printed.out
    assert (out / cli_gan.GENERATOR_FILE).is_file()
    _grid_size(out / "samples.png")
    grid = tmp_path / "grid.png"
    extra = {"cgan": ["--label", "7"], "stackgan": ["--caption", "a small blue triangle at the top left"]}
    assert cli.main(["sample", "--checkpoint", str(out), "--n", "12", "--nrow", "4", "--out", str(grid)]
                    + extra.get(task, [])) == 0
    width, height = _grid_size(grid)
    rows = 9 if task == "superres" else 3  # superres: inputs, outputs and originals of 12 digits
    side = 28 if task in ("gan", "cgan", "superres", "lapgan") else 32
    assert (width, height) == (4 * (2 * side + 2) + 2, rows * (2 * side + 2) + 2)
    assert f"wrote 12 {task} samples" in capsys.readouterr().out
    if task == "superres":
        assert "psnr_gan: " in printed.out and "psnr_bicubic: " in printed.out and "psnr_pyr_up: " in printed.out


def test_sample_is_deterministic_for_a_seed(tmp_path, capsys):
    out = tmp_path / "gan"
    cli.main(["train", "--task", "gan", "--model", "mlp", "--epochs", "1", "--limit", "64", "--out", str(out),
              "--no-progress", "--threads", "1"])
    for name in ("a.png", "b.png"):
        cli.main(["sample", "--checkpoint", str(out / cli_gan.GENERATOR_FILE), "--n", "8", "--seed", "3",
                  "--out", str(tmp_path / name)])
    capsys.readouterr()
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "gan", "--model", "unet"], "not a gan model"),
    (["train", "--task", "stackgan", "--data", "mnist5k"], "not a stackgan dataset"),
    (["train", "--task", "gan", "--k", "0"], "--k must be at least 1"),
    (["train", "--task", "gan", "--word-weight", "1"], "are stackgan options"),
    (["train", "--task", "cgan", "--stage2-pool"], "are stackgan options"),
    (["train", "--task", "stackgan", "--word-weight", "-1"], "--word-weight must be >= 0"),
    (["train", "--task", "stackgan", "--stage2-epochs", "0"], "--stage2-epochs must be at least 1"),
    (["train", "--task", "gan", "--word-classifier"], "are stackgan options"),
    (["train", "--task", "lapgan", "--stage2-lambda", "1"], "are stackgan options"),
    (["train", "--task", "stackgan", "--word-classifier"], "--word-classifier needs --word-weight > 0"),
    (["train", "--task", "stackgan", "--stage2-lambda", "-1"], "--stage2-lambda must be >= 0"),
    (["train", "--task", "stackgan", "--word-weight", "1", "--word-freeze"], "--word-freeze needs --word-classifier"),
    (["train", "--task", "cgan", "--word-freeze"], "are stackgan options"),
    (["sample", "--checkpoint", "/nonexistent/run"], "does not exist"),
])
def test_gan_commands_reject_bad_arguments(argv, message):
    with pytest.raises(SystemExit, match=message):
        cli.main(argv + (["--no-progress"] if argv[0] == "train" else []))


def test_sample_options_must_fit_the_generator(tmp_path, capsys):
    out = tmp_path / "gan"
    cli.main(["train", "--task", "gan", "--model", "mlp", "--epochs", "1", "--limit", "64", "--out", str(out),
              "--no-progress", "--threads", "1"])
    capsys.readouterr()
    with pytest.raises(SystemExit, match="--label needs a cgan"):
        cli.main(["sample", "--checkpoint", str(out), "--label", "3"])
    with pytest.raises(SystemExit, match="--caption needs a stackgan"):
        cli.main(["sample", "--checkpoint", str(out), "--caption", "a red circle"])
    # fit_gan's resumable checkpoint holds the generator too
    assert cli.main(["sample", "--checkpoint", str(out / "last.safetensors"), "--n", "4",
                     "--out", str(tmp_path / "from_last.png")]) == 0
    import striate as st
    st.save({"meta": {"task": "segment"}, "model": {}}, tmp_path / "other.safetensors")
    with pytest.raises(SystemExit, match="not written by a GAN task"):
        cli.main(["sample", "--checkpoint", str(tmp_path / "other.safetensors")])
    with pytest.raises(SystemExit, match="is a gan run"):
        cli.main(["eval", "--checkpoint", str(out / "last.safetensors")])


def test_psnr_and_the_upsampling_baselines():
    rng = np.random.default_rng(0)
    a = rng.random((3, 1, 4, 4))
    b = np.clip(a + 0.1, 0, 1)
    mse = ((a - b) ** 2).reshape(3, -1).mean(1)
    from striate.metrics import bicubic_upsample, psnr

    assert psnr(a, b) == pytest.approx(np.mean(10 * np.log10(1 / mse)))
    with pytest.raises(ValueError, match="psnr: a and b must be"):
        psnr(a, b[:2])
    flat = np.full((2, 1, 14, 14), 0.25, np.float32)
    np.testing.assert_allclose(bicubic_upsample(flat, 28), 0.25, atol=1e-6)  # constants stay constant
    import striate as st
    low = cli_gan.downsample(st.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))).numpy()
    np.testing.assert_allclose(low[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_stackgan_word_weight_trains_the_word_term_and_records_it(tmp_path, capsys):
    import json
    out = tmp_path / "stackgan"
    assert cli.main(["train", "--task", "stackgan", "--epochs", "1", "--stage2-epochs", "2", "--word-weight", "1",
                     "--stage2-pool", "--limit", "64", "--batch-size", "32", "--out", str(out), "--no-progress",
                     "--threads", "1"]) == 0
    capsys.readouterr()
    for stage, epochs in (("stage1", 1), ("stage2", 2)):
        history = json.loads((out / stage / "losses.json").read_text())
        assert len(history["words_real"]) == epochs and all(v > 0 for v in history["words_fake"])
    G, meta = cli_gan.load_generator(out)
    assert meta["word_weight"] == 1.0 and meta["stage2_epochs"] == 2 and meta["stage2_pool"] is True


def test_stackgan_word_classifier_warms_up_on_three_times_the_pairs(tmp_path, capsys):
    import json
    out = tmp_path / "stackgan"
    assert cli.main(["train", "--task", "stackgan", "--epochs", "1", "--stage2-epochs", "1", "--word-weight", "1",
                     "--word-classifier", "--word-freeze", "--stage2-lambda", "0.2", "--limit", "32",
                     "--batch-size", "32",
                     "--out", str(out), "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert f"word warm-up {cli_gan.STACKGAN_WORD_WARMUP}/{cli_gan.STACKGAN_WORD_WARMUP}" in err
    assert err.count("stage 1 word warm-up") == 0          # stage I keeps the head on its trunk
    state = st.load(str(out / "stage2" / "last.safetensors"))
    assert any(k.startswith("word_net.") for k in state["D"]) and not any(k.startswith("word_head") for k in state["D"])
    history = json.loads((out / "stage2" / "losses.json").read_text())
    assert history["words_real"] == [None] and history["words_fake"][0] > 0    # frozen: no real word term
    G, meta = cli_gan.load_generator(out)
    assert meta["word_classifier"] is True and meta["stage2_lambda"] == 0.2 and meta["word_weight"] == 1.0
    assert meta["word_freeze"] is True
    assert cli.main(["sample", "--checkpoint", str(out), "--n", "4", "--caption", "a red circle",
                     "--out", str(tmp_path / "grid.png")]) == 0
