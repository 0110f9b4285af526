"""striate.train.fit_gan: the seed's alternating updates, hand-computed generator gradients,
diagnostics and warnings, figures, bit-exact resume; and metrics.sample_class_stats.

The networks are tiny (a linear G 2 -> 2, a linear D 2 -> 1, or 8x8 MLP/DCGAN pairs) so
each test runs in well under a second. The suite turns warnings into errors, so every
test that provokes a GANWarning expects it with ``pytest.warns``, and the others set
thresholds that cannot fire or rely on none firing.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import striate as st
import striate.nn as nn
import striate.nn.functional as F
from striate.data import DataLoader, TensorDataset
from striate.metrics import sample_class_stats
from striate.models import DCDiscriminator, DCGenerator, ImageConditionedDiscriminator, ImageConditionedGenerator
from striate.models import MLPDiscriminator, MLPGenerator
from striate.optim import SGD
from striate.train import (DiscriminatorSaturationWarning, GANHistory, GANThresholds, ModeCollapseWarning,
                           VanishingGradientWarning, fit_gan, generator_loss)

QUIET = GANThresholds(diversity_ratio=0.0, patience=10**9)


class LinearG(nn.Module):
    """G(z) = z W^T + b: 2 -> 2, no tanh (the gradient check needs the plain map)."""

    def __init__(self, weight, bias, tanh=False):
        super().__init__()
        self.z_dim, self.conditional = 2, False
        self.fc = nn.Linear(2, 2)
        self.fc.load_state_dict({"weight": np.asarray(weight, np.float32), "bias": np.asarray(bias, np.float32)})
        self.tanh = tanh

    def forward(self, z):
        out = self.fc(z)
        return F.tanh(out) if self.tanh else out


class LinearD(nn.Module):
    """D(x) = x . w + c as (N,) logits."""

    def __init__(self, weight, bias):
        super().__init__()
        self.fc = nn.Linear(2, 1)
        self.fc.load_state_dict({"weight": np.asarray([weight], np.float32), "bias": np.asarray([bias], np.float32)})

    def forward(self, x):
        return self.fc(x).reshape(-1)


class Points:
    """Batches of 2-D points (plain Tensors, no labels), in a fixed order."""

    def __init__(self, n=12, batch_size=4, center=0.0):
        self.x = (np.random.default_rng(5).standard_normal((n, 2)) + center).astype(np.float32)
        self.batch_size, self.passes = batch_size, 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        self.passes += 1
        for i in range(0, len(self.x), self.batch_size):
            yield st.tensor(self.x[i:i + self.batch_size])


def _identity(x):
    return x


def _params(model):
    return [p.numpy().copy() for p in model.parameters()]


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


class Recording(SGD):
    """SGD that logs, at every step, both networks' parameters before and after and D's/G's grads."""

    def __init__(self, params, lr, kind, log, nets):
        super().__init__(params, lr=lr)
        self.kind, self.log, self.nets = kind, log, nets

    def step(self, closure=None):
        G, D = self.nets
        before = (_params(G), _params(D))
        other = D if self.kind == "G" else G
        other_grads = [p.grad for p in other.parameters()]
        result = super().step(closure)
        self.log.append({"kind": self.kind, "before": before, "after": (_params(G), _params(D)),
                         "other_grads_none": all(g is None for g in other_grads)})
        return result


# ------------------------------------------------------------------ the seed's algorithm
def test_k_discriminator_steps_per_generator_step_and_frozen_networks():
    st.manual_seed(0)
    G, D = LinearG([[1, 0.5], [0, 1]], [0, 0], tanh=True), LinearD([0.3, -0.2], 0.1)
    log = []
    g_opt = Recording(G.parameters(), 0.1, "G", log, (G, D))
    d_opt = Recording(D.parameters(), 0.1, "D", log, (G, D))
    loader = Points(n=28, batch_size=4)  # 7 batches: 2 iterations of k=3, 1 batch unused
    history = fit_gan(G, D, loader, k=3, epochs=2, g_optimizer=g_opt, d_optimizer=d_opt, preprocess=_identity,
                      progress=False, thresholds=QUIET, n_samples=4)
    assert "".join(e["kind"] for e in log) == "DDDGDDDG" * 2
    assert loader.passes == 2
    assert history["g_steps"] == [2, 2] and history["d_steps"] == [6, 6] and history["unused_batches"] == [1, 1]
    assert len(history.steps["step"]) == 4 and history.steps["epoch"] == [1, 1, 2, 2]
    for entry in log:
        g_before, d_before = entry["before"]
        g_after, d_after = entry["after"]
        assert entry["other_grads_none"]
        if entry["kind"] == "D":
            assert _same(g_before, g_after) and not _same(d_before, d_after)
        else:
            assert _same(d_before, d_after) and not _same(g_before, g_after)
    for previous, current in zip(log, log[1:]):  # nothing else touches either network between steps
        assert _same(previous["after"][0], current["before"][0]) and _same(previous["after"][1], current["before"][1])


def _hand_generator_gradient(W, b, w, c, z, loss):
    """d/dW, d/db of mean log(1 - s(l)) (minimax) or -mean log s(l) (nonsaturating), l = (zW^T + b).w + c."""
    logits = (z @ W.T + b) @ w + c
    s = 1 / (1 + np.exp(-logits))
    dl = (-s if loss == "minimax" else -(1 - s)) / len(z)
    return np.outer(w, dl @ z), dl.sum() * w


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
def test_generator_step_follows_the_seed_formula(loss):
    W, b = np.array([[0.8, -0.3], [0.2, 0.5]]), np.array([0.1, -0.2])
    w, c = np.array([0.7, -1.1]), 0.3
    G, D = LinearG(W, b), LinearD(w, c)
    lr, seed, loader = 0.5, 11, Points(n=4, batch_size=4)
    st.manual_seed(seed)
    fit_gan(G, D, loader, k=1, loss=loss, g_optimizer=SGD(G.parameters(), lr=lr),
            d_optimizer=SGD(D.parameters(), lr=0.0), preprocess=_identity, progress=False, thresholds=QUIET,
            n_samples=4)
    st.manual_seed(seed)
    st.randn(4, 2)  # the D step's noise
    z = st.randn(4, 2).numpy().astype(np.float64)  # the G step's noise
    dW, db = _hand_generator_gradient(W.astype(np.float32), b.astype(np.float32), w.astype(np.float32),
                                      np.float32(c), z, loss)
    np.testing.assert_allclose(G.fc.weight.numpy(), W - lr * dW, rtol=0, atol=1e-6)
    np.testing.assert_allclose(G.fc.bias.numpy(), b - lr * db, rtol=0, atol=1e-6)


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
def test_generator_loss_values(loss):
    logits = np.array([-3.0, 0.0, 2.5, 40.0], np.float32)
    l64 = logits.astype(np.float64)  # log(1 - s(l)) = -log(1 + e^l), -log s(l) = log(1 + e^-l)
    expected = -np.mean(np.logaddexp(0, l64)) if loss == "minimax" else np.mean(np.logaddexp(0, -l64))
    got = generator_loss(st.tensor(logits), loss).item()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        generator_loss(st.tensor(logits), "wasserstein")


def test_argument_errors():
    G, D = LinearG(np.eye(2), [0, 0]), LinearD([1, 1], 0)
    with pytest.raises(ValueError, match=r"batches per epoch must be at least k \(5\)"):
        fit_gan(G, D, Points(n=12, batch_size=4), k=5, progress=False)
    with pytest.raises(ValueError, match="loss must be one of"):
        fit_gan(G, D, Points(), loss="hinge", progress=False)
    with pytest.raises(ValueError, match=r"z_dim \(3\) must equal G.z_dim \(2\)"):
        fit_gan(G, D, Points(), z_dim=3, progress=False)
    with pytest.raises(ValueError, match="resume=True needs out"):
        fit_gan(G, D, Points(), resume=True, progress=False)


# ------------------------------------------------------------------ diagnostics
def test_vanishing_gradient_warns_with_minimax_but_not_nonsaturating():
    """A D whose logits are about -40 on G's samples: minimax's gradient is ~sigmoid(-40) * w."""
    thresholds = GANThresholds(grad_norm=1e-3, patience=3, diversity_ratio=0.0)

    def run(loss):
        st.manual_seed(0)
        G, D = LinearG(np.eye(2), [0, 0], tanh=True), LinearD([1.0, 1.0], -40.0)
        return fit_gan(G, D, Points(n=16, batch_size=4), loss=loss, d_optimizer=SGD(D.parameters(), lr=0.0),
                       preprocess=_identity, progress=False, thresholds=thresholds, n_samples=4)

    with pytest.warns(VanishingGradientWarning, match="gradient norm has stayed below"):
        history = run("minimax")
    assert max(history.steps["g_grad_norm"]) < 1e-12
    assert min(run("nonsaturating").steps["g_grad_norm"]) > 0.1


def test_saturated_discriminator_warns():
    thresholds = GANThresholds(patience=2, diversity_ratio=0.0)
    st.manual_seed(0)
    G, D = LinearG(np.eye(2), [0, 0], tanh=True), LinearD([10.0, 10.0], -40.0)  # real points near (5, 5)
    with pytest.warns(DiscriminatorSaturationWarning, match="D has saturated"):
        history = fit_gan(G, D, Points(n=12, batch_size=4, center=5.0), d_optimizer=SGD(D.parameters(), lr=0.0),
                          preprocess=_identity, progress=False, thresholds=thresholds, n_samples=4)
    assert min(history.steps["d_real"]) > 0.99 and max(history.steps["d_fake"]) < 0.01


def test_mode_collapse_flag_with_diversity_and_classifier():
    st.manual_seed(0)
    G = LinearG(np.zeros((2, 2)), [0.5, -0.5], tanh=True)  # every sample is the same point
    D = LinearD([0.1, 0.1], 0.0)
    classifier = nn.Linear(2, 3)
    classifier.load_state_dict({"weight": np.array([[1, 0], [0, 1], [-1, -1]], np.float32),
                                "bias": np.zeros(3, np.float32)})
    with pytest.warns(ModeCollapseWarning, match="diversity ratio 0.000 < 0.5; 1 of 3 classes present"):
        history = fit_gan(G, D, Points(n=8, batch_size=4), g_optimizer=SGD(G.parameters(), lr=0.0),
                          preprocess=_identity, progress=False, classifier=classifier, n_samples=6,
                          thresholds=GANThresholds(patience=10**9))
    assert history["collapse"] == [True]
    assert history["diversity"] == [0.0] and history["diversity_real"][0] > 0
    assert history["class_histogram"] == [[6, 0, 0]] and history["classes_present"] == [1]
    assert history["max_share"] == [1.0]


def test_sample_class_stats_by_hand():
    classifier = nn.Linear(2, 3)
    classifier.load_state_dict({"weight": np.array([[1, 0], [0, 1], [0, 0]], np.float32),
                                "bias": np.zeros(3, np.float32)})
    classifier.train()
    images = np.array([[2, 0], [3, 1], [0, 2], [0, 0]], np.float32)  # classes 0, 0, 1, tie -> first (0)
    stats = sample_class_stats(classifier, images, 3)
    assert stats["histogram"] == [3, 1, 0] and stats["classes_present"] == 2 and stats["max_share"] == 0.75
    top = [np.exp(2) / (np.exp(2) + 2), np.exp(3) / (np.exp(3) + np.e + 1), np.exp(2) / (np.exp(2) + 2), 1 / 3]
    np.testing.assert_allclose(stats["mean_confidence"], np.mean(top), rtol=1e-6)
    assert classifier.training
    with pytest.raises(ValueError, match=r"num_classes \(4\) must equal the classifier's 3 logits"):
        sample_class_stats(classifier, images, 4)


# ------------------------------------------------------------------ files and resume
def _png_size(path):
    with Image.open(path) as image:
        return image.size


def _digits(n=24, size=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, size, size)).astype(np.float32), (np.arange(n) % 4).astype(np.int64)


def _label_gan():
    return (DCGenerator(4, 1, 8, base=4, num_classes=4), DCDiscriminator(1, 8, base=4, num_classes=4))


def test_resume_is_bit_exact(tmp_path):
    x, y = _digits()

    def run(out, epochs, resume=False, fresh=True):
        if fresh:
            st.manual_seed(3)
        G, D = _label_gan()
        loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
        history = fit_gan(G, D, loader, k=2, epochs=epochs, out=out, resume=resume, progress=False,
                          thresholds=QUIET, n_samples=8)
        return G, D, history

    G_full, D_full, full = run(tmp_path / "full", 3)
    run(tmp_path / "part", 1)
    st.manual_seed(99)  # a different state: the checkpoint must restore everything
    G_res, D_res, resumed = run(tmp_path / "part", 3, resume=True, fresh=False)
    for a, b in ((G_full, G_res), (D_full, D_res)):
        for (name, u), (_, v) in zip(a.state_dict().items(), b.state_dict().items()):
            assert np.array_equal(u.numpy(), v.numpy()), name
    assert full.steps == resumed.steps
    for column in ("d_loss", "g_loss", "diversity", "collapse"):
        assert full[column] == resumed[column]
    assert GANHistory.from_dict(resumed.to_dict()).steps == resumed.steps


def test_png_and_json_files(tmp_path):
    st.manual_seed(0)
    x, y = _digits()
    G, D = _label_gan()
    fit_gan(G, D, DataLoader(TensorDataset(x, y), batch_size=8), epochs=2, out=tmp_path, progress=False,
            thresholds=QUIET, n_samples=8)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"samples_epoch001.png", "samples_epoch002.png", "samples.png", "losses.png", "history.json",
            "last.safetensors"} <= names
    assert _png_size(tmp_path / "samples.png") == (4 * 10 + 2, 2 * 10 + 2)  # labels 0..3 cycled: one column per class
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["epochs"]["epoch"] == [1, 2] and len(saved["steps"]["g_loss"]) == 6


def test_image_conditions_are_preprocessed_and_drawn(tmp_path):
    st.manual_seed(0)
    x, _ = _digits(n=16)
    low = x.reshape(16, 1, 4, 2, 4, 2).mean(axis=(3, 5))  # 4x4 condition images in [0, 1]
    G = ImageConditionedGenerator(3, 1, scale=2, base=4, depth=2)
    D = ImageConditionedDiscriminator(1, base=4, depth=2)
    seen = []
    forward = G.forward

    def spy(z, y):
        seen.append(y.numpy().min())
        return forward(z, y)

    G.forward = spy
    history = fit_gan(G, D, DataLoader(TensorDataset(x, low), batch_size=8), out=tmp_path, progress=False,
                      thresholds=QUIET, n_samples=5)
    assert min(seen) < 0  # x * 2 - 1 applied to the conditions too
    assert history["g_steps"] == [2]
    assert _png_size(tmp_path / "conditions.png") == (5 * 6 + 2, 8)  # five 4x4 conditions, 2 px apart
    assert _png_size(tmp_path / "samples.png") == (5 * 10 + 2, 12)


def test_unconditional_mlp_on_plain_batches():
    st.manual_seed(0)
    G, D = MLPGenerator(3, (1, 4, 4), hidden=(8,)), MLPDiscriminator((1, 4, 4), hidden=(8,))

    class Images:
        def __iter__(self):
            for i in range(3):
                yield np.random.default_rng(i).random((4, 1, 4, 4)).astype(np.float32)

    history = fit_gan(G, D, Images(), progress=False, thresholds=QUIET, n_samples=4)
    assert history["g_steps"] == [3] and history["class_histogram"] == [None]


@pytest.mark.filterwarnings("ignore::striate.train.gan.GANWarning")
def test_reconstruction_term_is_added_and_recorded():
    import striate as st
    from striate import models
    from striate.data import DataLoader, TensorDataset
    from striate.train import fit_gan

    st.manual_seed(0)
    rng = np.random.default_rng(0)
    high = st.tensor(rng.random((32, 1, 8, 8)).astype(np.float32))
    low = st.tensor(high.numpy().reshape(32, 1, 4, 2, 4, 2).mean(axis=(3, 5)))
    G = models.ImageConditionedGenerator(4, 1, scale=2, base=4, depth=2, residual=True)
    D = models.ImageConditionedDiscriminator(1, base=4, depth=1)
    loader = DataLoader(TensorDataset(high, low), batch_size=8)
    history = fit_gan(G, D, loader, epochs=3, lr=1e-2, progress=False, n_samples=4,
                      reconstruction="l1", reconstruction_weight=10.0, thresholds=None)
    recon = history.steps["g_recon"]
    assert len(recon) == 12 and all(r is not None for r in recon)
    assert np.mean(recon[-4:]) < np.mean(recon[:4])
    plain = fit_gan(G, D, loader, epochs=1, progress=False, n_samples=4)
    assert plain.steps["g_recon"] == [None] * 4
    for kwargs, message in (({"reconstruction": "l3", "reconstruction_weight": 1.0}, "reconstruction must"),
                            ({"reconstruction": "l1"}, "reconstruction_weight must")):
        with pytest.raises(ValueError, match=message):
            fit_gan(G, D, loader, epochs=1, progress=False, **kwargs)
