"""Whole-model parity with PyTorch, reproducibility and checkpoint resumption (issue 3 acceptance).

Three small models are written once as nn.Module subclasses over a library
namespace and built in both striate and torch with the same attribute names,
so their state_dict keys match; PyTorch's state_dict (as numpy arrays) is
loaded into striate before each comparison:

* ``LeNet``: conv5x5 -> ReLU -> maxpool -> conv5x5 -> ReLU -> maxpool -> flatten
  -> linear -> ReLU [-> dropout] -> linear -> linear, on 1x28x28;
* ``Inception``: 1x1 / 1x1->3x3 / 1x1->5x5 / maxpool->1x1 branches, each with a
  ReLU, concatenated on channels, then a global average and a linear head;
* ``ConvBN``: reflect-padded grouped conv -> BatchNorm -> ReLU -> maxpool, twice,
  then a linear head.

Tolerances follow llm.c's validate_result, |a - e| <= atol + rtol * |e|, with
atol = rtol * max|e| so that entries near zero are judged against the scale of
the whole tensor: rtol 1e-5 for float32 forward outputs, 1e-4 for float32
gradients and for parameters after 20 optimizer steps. The training runs are
also done in float64 and must agree to 1e-10 there, which also catches update-rule
differences (a weight decay left out, say) too small to stand out in float32.
"""
from __future__ import annotations

import functools
import types

import numpy as np
import pytest

import striate as st
import striate.nn as snn
import striate.nn.functional as SF
import striate.random
from striate.optim import SGD, Adam, AdamW
from tests.checks import assert_close

BATCH = 8
CLASSES = 10
STEPS = 20
TORCH_DTYPE = {np.float32: "float32", np.float64: "float64"}
FORWARD_RTOL = {np.float32: 1e-5, np.float64: 1e-12}
GRAD_RTOL = {np.float32: 1e-4, np.float64: 1e-10}
TRAINED_RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def model_classes(nn, F, cat):
    """The three test models over one library: nn and F are its modules, cat its concatenation."""

    class LeNet(nn.Module):
        input_shape = (1, 28, 28)

        def __init__(self, dropout=0.0):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)    # 28 -> 24, pooled to 12
            self.conv2 = nn.Conv2d(6, 16, 5)   # 12 -> 8, pooled to 4
            self.pool = nn.MaxPool2d(2)
            self.fc1 = nn.Linear(16 * 4 * 4, 32)
            self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
            self.fc2 = nn.Linear(32, 24)
            self.fc3 = nn.Linear(24, CLASSES)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = self.drop(F.relu(self.fc1(x.flatten(1))))
            return self.fc3(self.fc2(x))

    class Inception(nn.Module):
        input_shape = (8, 16, 16)

        def __init__(self, cin=8):
            super().__init__()
            self.branch1 = nn.Conv2d(cin, 4, 1)
            self.branch3_reduce = nn.Conv2d(cin, 4, 1)
            self.branch3 = nn.Conv2d(4, 6, 3, padding=1)
            self.branch5_reduce = nn.Conv2d(cin, 2, 1)
            self.branch5 = nn.Conv2d(2, 4, 5, padding=2)
            self.pool = nn.MaxPool2d(3, stride=1, padding=1)
            self.pool_proj = nn.Conv2d(cin, 4, 1)
            self.fc = nn.Linear(4 + 6 + 4 + 4, CLASSES)

        def forward(self, x):
            y = cat([F.relu(self.branch1(x)),
                     F.relu(self.branch3(F.relu(self.branch3_reduce(x)))),
                     F.relu(self.branch5(F.relu(self.branch5_reduce(x)))),
                     F.relu(self.pool_proj(self.pool(x)))], 1)
            return self.fc(y.mean((2, 3)))

    class ConvBN(nn.Module):
        input_shape = (8, 16, 16)

        def __init__(self, cin=8):
            super().__init__()
            # no conv biases: BatchNorm cancels them, so their true gradient is 0 and the computed
            # one is rounding noise (which Adam would scale up to full-size steps)
            self.conv1 = nn.Conv2d(cin, 12, 3, padding=1, padding_mode="reflect", groups=2, bias=False)
            self.bn1 = nn.BatchNorm2d(12)
            self.conv2 = nn.Conv2d(12, 16, 3, padding=1, padding_mode="reflect", groups=4, bias=False)
            self.bn2 = nn.BatchNorm2d(16)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16 * 4 * 4, CLASSES)

        def forward(self, x):
            x = self.pool(F.relu(self.bn1(self.conv1(x))))  # 16 -> 8
            x = self.pool(F.relu(self.bn2(self.conv2(x))))  # 8 -> 4
            return self.fc(x.flatten(1))

    return types.SimpleNamespace(LeNet=LeNet, Inception=Inception, ConvBN=ConvBN)


MODELS = ["LeNet", "Inception", "ConvBN"]
OURS = model_classes(snn, SF, st.cat)


@functools.lru_cache(maxsize=None)
def _torch_classes():
    import torch
    return model_classes(torch.nn, torch.nn.functional, torch.cat)


def close(actual, expected, rtol, what):
    """|a - e| <= rtol * (|e| + max|e|), for a finite expected value."""
    actual = actual.numpy() if isinstance(actual, st.Tensor) else np.asarray(actual)
    expected = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    assert np.isfinite(expected).all(), f"{what}: PyTorch's value is not finite"
    scale = max(float(np.abs(expected).max(initial=0)), 1e-30)
    assert_close(actual, expected, rtol * scale, rtol, what)


def build_pair(torch, name, dtype):
    """The model in both libraries, striate's loaded from PyTorch's (fresh, seeded) state_dict."""
    torch.manual_seed(0)
    t_model = getattr(_torch_classes(), name)().to(getattr(torch, TORCH_DTYPE[dtype]))
    s_model = getattr(OURS, name)().to(dtype=dtype)
    t_state = t_model.state_dict()
    assert list(s_model.state_dict()) == list(t_state)
    result = s_model.load_state_dict({k: v.detach().numpy() for k, v in t_state.items()})
    assert repr(result) == "<All keys matched successfully>"
    return s_model, t_model


def batches(name, dtype, count, seed=1):
    """count fixed (inputs, int64 labels) numpy batches."""
    rng = np.random.default_rng(seed)
    shape = (BATCH,) + getattr(OURS, name).input_shape
    return [(rng.standard_normal(shape).astype(dtype), rng.integers(0, CLASSES, BATCH))
            for _ in range(count)]


def assert_state_close(s_model, t_model, rtol, what):
    """Every parameter and buffer; num_batches_tracked exactly."""
    t_state = t_model.state_dict()
    for key, value in s_model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert value.dtype == np.int64 and value.item() == t_state[key].item(), key
        else:
            close(value, t_state[key], rtol, f"{what}: {key}")


# ------------------------------------------------------------- forward and gradients
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", MODELS)
def test_forward_and_gradients_match_torch(torch, name, dtype):
    s_model, t_model = build_pair(torch, name, dtype)
    (x, labels), = batches(name, dtype, 1)
    s_x, t_x = st.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    s_y, t_y = s_model(s_x), t_model(t_x)
    close(s_y, t_y, FORWARD_RTOL[dtype], "train-mode output")

    s_loss = SF.cross_entropy(s_y, st.tensor(labels))
    t_loss = torch.nn.functional.cross_entropy(t_y, torch.tensor(labels))
    close(s_loss, t_loss, FORWARD_RTOL[dtype], "loss")
    s_loss.backward()
    t_loss.backward()
    close(s_x.grad, t_x.grad, GRAD_RTOL[dtype], "input gradient")
    t_params = dict(t_model.named_parameters())
    assert [n for n, _ in s_model.named_parameters()] == list(t_params)
    for pname, p in s_model.named_parameters():
        close(p.grad, t_params[pname].grad, GRAD_RTOL[dtype], f"gradient of {pname}")
    assert_state_close(s_model, t_model, FORWARD_RTOL[dtype], "after one train-mode forward")

    s_model.eval()
    t_model.eval()
    with st.no_grad(), torch.no_grad():
        close(s_model(st.tensor(x)), t_model(torch.tensor(x)), FORWARD_RTOL[dtype], "eval-mode output")


# ------------------------------------------------------------- 20 optimizer steps
OPTIMIZERS = {
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "adam": ("Adam", dict(lr=1e-3, weight_decay=1e-4)),
    "adamw": ("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
}
OUR_OPTIMIZERS = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}


def train(lib, model, opt, data):
    """One optimizer step per (x, labels) batch, with cross-entropy; lib is striate or torch."""
    F = lib.nn.functional
    model.train()
    for x, labels in data:
        opt.zero_grad()
        F.cross_entropy(model(lib.tensor(x)), lib.tensor(labels)).backward()
        opt.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("name", MODELS)
def test_training_steps_match_torch(torch, name, opt_name, dtype):
    cls, kwargs = OPTIMIZERS[opt_name]
    s_model, t_model = build_pair(torch, name, dtype)
    initial = {k: v.numpy().copy() for k, v in s_model.state_dict().items()}
    data = batches(name, dtype, STEPS)
    train(st, s_model, OUR_OPTIMIZERS[cls](s_model.parameters(), **kwargs), data)
    train(torch, t_model, getattr(torch.optim, cls)(t_model.parameters(), foreach=False, **kwargs), data)

    rtol = TRAINED_RTOL[dtype]
    assert_state_close(s_model, t_model, rtol, f"after {STEPS} {opt_name} steps")
    moved = [k for k, v in s_model.state_dict().items() if not np.array_equal(v.numpy(), initial[k])]
    assert moved == list(initial), "every parameter and buffer must have changed during training"

    s_model.eval()
    t_model.eval()
    x = batches(name, dtype, 1, seed=2)[0][0]
    with st.no_grad(), torch.no_grad():
        t_y = t_model(torch.tensor(x))
        close(s_model(st.tensor(x)), t_y, rtol, "eval-mode output of the trained models")
        # eval mode with trained running statistics, at forward precision: PyTorch's trained state
        fresh = getattr(OURS, name)().to(dtype=dtype).eval()
        fresh.load_state_dict({k: v.numpy() for k, v in t_model.state_dict().items()})
        close(fresh(st.tensor(x)), t_y, FORWARD_RTOL[dtype], "eval-mode output with PyTorch's trained state")


# ------------------------------------------------------------- reproducibility and resumption
POOL = 32  # examples the data order draws batches from


def dataset(input_shape):
    rng = np.random.default_rng(3)
    return rng.standard_normal((POOL,) + input_shape).astype(np.float32), rng.integers(0, CLASSES, POOL)


def seeded_steps(model, opt, data, steps):
    """Training steps on batches in an order drawn from striate's generator (dropout active)."""
    images, labels = data
    model.train()
    for _ in range(steps):
        pick = striate.random.generator().permutation(POOL)[:BATCH]
        opt.zero_grad()
        SF.cross_entropy(model(st.tensor(images[pick])), st.tensor(labels[pick])).backward()
        opt.step()


def seeded_run(seed, steps=4):
    st.manual_seed(seed)
    model = OURS.LeNet(dropout=0.5)
    seeded_steps(model, SGD(model.parameters(), lr=0.05, momentum=0.9), dataset(model.input_shape), steps)
    return {k: v.numpy() for k, v in model.state_dict().items()}


def test_manual_seed_reproduces_a_run_bit_for_bit():
    first, again, other = seeded_run(7), seeded_run(7), seeded_run(8)
    assert list(first) == list(again) == list(other)
    for key in first:
        np.testing.assert_array_equal(again[key], first[key], err_msg=key)
        assert not np.array_equal(other[key], first[key]), f"{key} must depend on the seed"


RESUME_CASES = {  # (model class, its arguments, optimizer)
    "lenet_dropout_adam": ("LeNet", dict(dropout=0.5), lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-4)),
    "convbn_sgd_nesterov": ("ConvBN", {},
                            lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_checkpoint_mid_training_resumes_bit_exactly(tmp_path, case):
    name, model_kwargs, make_opt = RESUME_CASES[case]
    cls = getattr(OURS, name)
    data = dataset(cls.input_shape)

    def make_model():
        return cls(**model_kwargs)

    st.manual_seed(5)
    straight = make_model()
    seeded_steps(straight, make_opt(straight.parameters()), data, 6)

    st.manual_seed(5)
    model = make_model()
    opt = make_opt(model.parameters())
    seeded_steps(model, opt, data, 3)
    path = tmp_path / "checkpoint.safetensors"
    st.save({"model": model.state_dict(), "optim": opt.state_dict(), "rng": st.get_rng_state()}, path)
    del model, opt

    st.manual_seed(123)  # fresh objects with a different initialisation and random state
    resumed = make_model()
    opt = make_opt(resumed.parameters())
    checkpoint = st.load(path)
    resumed.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optim"])
    st.set_rng_state(checkpoint["rng"])
    seeded_steps(resumed, opt, data, 3)

    expected = straight.state_dict()
    for key, value in resumed.state_dict().items():
        assert value.dtype == expected[key].dtype, key
        np.testing.assert_array_equal(value.numpy(), expected[key].numpy(), err_msg=key)
