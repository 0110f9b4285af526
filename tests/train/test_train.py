"""striate.train: fit/evaluate on a tiny synthetic problem, History files, figures, bit-exact resume.

The loaders and models here are small stand-ins (not striate.data / striate.models), so the
tests exercise only the training loop's contract: an iterable of (inputs, targets) batches.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import striate as st
import striate.nn as nn
import striate.random
from striate.optim import SGD, Adam
from striate.optim.lr_scheduler import StepLR
from striate.train import (History, confusion_matrix, evaluate, fit, save_confusion_png,
                           save_prediction_grid)

CLASSES = 3


class ShuffledBatches:
    """Batches of (x, y) Tensors; the order of each pass is drawn from striate's generator."""

    def __init__(self, x, y, batch_size, shuffle=True):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = (striate.random.generator().permutation(len(self.x)) if self.shuffle
                 else np.arange(len(self.x)))
        for i in range(0, len(order), self.batch_size):
            pick = order[i:i + self.batch_size]
            yield st.tensor(self.x[pick]), st.tensor(self.y[pick])


def blobs(n=192, seed=0):
    """Three well separated Gaussian clusters in 8 dimensions."""
    centers = np.random.default_rng(1234).standard_normal((CLASSES, 8)).astype(np.float32) * 4
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = centers[y] + rng.standard_normal((n, 8)).astype(np.float32) * 0.5
    return x.astype(np.float32), y.astype(np.int64)


def mlp(dropout=0.0):
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, CLASSES))


def test_fit_learns_a_separable_problem_and_evaluate_restores_the_mode():
    st.manual_seed(0)
    x, y = blobs()
    train, val = ShuffledBatches(x, y, 32), ShuffledBatches(*blobs(seed=1), 64, shuffle=False)
    model = mlp()
    history = fit(model, train, SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=5,
                  val_loader=val, progress=False)
    assert len(history) == 5 and history.epoch == [1, 2, 3, 4, 5]
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_accuracy[-1] >= 0.95
    assert all(t > 0 for t in history.epoch_time) and history.lr == [0.1] * 5
    model.train()
    result = evaluate(model, val)
    assert model.training
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(history.val_accuracy[-1])
    model.eval()
    evaluate(model, val)
    assert not model.training


def test_fit_records_metrics_scheduler_lr_and_shows_progress(capsys):
    st.manual_seed(1)
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    loader = ShuffledBatches(*blobs(64), 16)
    mean_logit = {"mean_logit": lambda logits, targets: logits.mean().item()}
    history = fit(model, loader, opt, epochs=3, scheduler=StepLR(opt, step_size=1, gamma=0.5),
                  metrics=mean_logit, progress=True)
    assert history.lr == pytest.approx([0.1, 0.05, 0.025])
    assert len(history.train_mean_logit) == 3 and np.isnan(history.val_mean_logit).all()
    assert "epoch 3" in capsys.readouterr().err


def test_history_files_and_figures_are_valid(tmp_path):
    st.manual_seed(2)
    x, y = blobs(96)
    model = mlp()
    loader = ShuffledBatches(x, y, 32, shuffle=False)
    history = fit(model, loader, Adam(model.parameters(), lr=1e-2), epochs=3, val_loader=loader,
                  progress=False)
    json_path, png_path = history.save(tmp_path / "run")
    with open(json_path, encoding="utf-8") as f:
        rows = json.load(f)
    assert rows["epoch"] == [1, 2, 3] and rows["val_loss"] == history.val_loss
    with Image.open(png_path) as image:
        assert image.format == "PNG" and image.size == (800, 320)

    matrix = confusion_matrix(model, loader, CLASSES)
    assert matrix.shape == (CLASSES, CLASSES) and matrix.sum() == len(y)
    np.testing.assert_array_equal(matrix.sum(1), np.bincount(y, minlength=CLASSES))
    save_confusion_png(matrix, tmp_path / "confusion.png")
    images = np.random.default_rng(0).random((10, 1, 28, 28)).astype(np.float32)
    save_prediction_grid(st.tensor(images), np.arange(10) % 3, np.zeros(10, np.int64),
                         tmp_path / "grid.png", columns=4)
    for name in ("confusion.png", "grid.png"):
        with Image.open(tmp_path / name) as image:
            image.verify()
            assert image.format == "PNG"
    with pytest.raises(ValueError, match="labels"):
        save_prediction_grid(images, np.arange(3), np.arange(10), tmp_path / "bad.png")


def test_history_round_trips_with_nan():
    history = History(["m"])
    history.append(1, {"loss": 1.0, "accuracy": 0.5, "m": 2.0}, None, 0.1, 0.2)
    again = History.from_dict(history.to_dict())
    assert again.train_m == [2.0] and np.isnan(again.val_loss[0]) and again.columns == history.columns


def _run(tmp_path, epochs, resume=False, seed=11):
    """A dropout model, shuffled data, Adam and StepLR; fresh objects as a new process would build."""
    st.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, CLASSES))
    opt = Adam(model.parameters(), lr=1e-2)
    scheduler = StepLR(opt, step_size=1, gamma=0.7)
    x, y = blobs(100)
    history = fit(model, ShuffledBatches(x, y, 16), opt, epochs, scheduler=scheduler,
                  val_loader=ShuffledBatches(x[:40], y[:40], 20), checkpoint_dir=tmp_path,
                  progress=False, resume=resume)
    return model, history


def test_interrupted_fit_resumes_bit_exactly(tmp_path):
    straight, straight_history = _run(tmp_path / "straight", 4)
    _run(tmp_path / "interrupted", 2)
    # resume in a "new process": a different seed gives other initial weights and random state
    resumed, resumed_history = _run(tmp_path / "interrupted", 4, resume=True, seed=99)
    expected = dict(straight.named_parameters())
    for name, param in resumed.named_parameters():
        assert np.array_equal(param.numpy(), expected[name].numpy()), name
    assert resumed_history.epoch == [1, 2, 3, 4]
    for column in ("train_loss", "val_loss", "lr"):
        assert resumed_history[column] == straight_history[column], column
    checkpoint = st.load(tmp_path / "interrupted" / "last.safetensors")
    assert checkpoint["epoch"] == 4 and set(checkpoint) >= {"model", "optimizer", "scheduler", "rng"}
    # resuming a finished run trains nothing more
    again, _ = _run(tmp_path / "interrupted", 4, resume=True, seed=5)
    assert np.array_equal(again[0].weight.numpy(), resumed[0].weight.numpy())


def test_resume_without_a_checkpoint_starts_afresh_and_checks_arguments(tmp_path):
    model, history = _run(tmp_path / "new", 1, resume=True)
    assert history.epoch == [1]
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(model, [], SGD(model.parameters(), lr=0.1), 1, resume=True)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, [], SGD(model.parameters(), lr=0.1), -1)
