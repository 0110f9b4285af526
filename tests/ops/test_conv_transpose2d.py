"""conv_transpose2d and its backward against the scatter-form reference and PyTorch."""
import numpy as np
import pytest

import striate.ops as ops
from tests import reference as ref
from tests.checks import (DTYPES, assert_close, assert_conv_matches, assert_conv_numerical_gradients,
                          assert_needs_selects_outputs, conv_arrays, random_array, sample_configs, tol)


def _out(n, k, s, p, op, d):
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def draw_geometry(rng, attempt, kh, kw):
    """(stride, padding, dilation, output_padding) for draw call `attempt` with a kh x kw
    kernel (shared with tests/cuda/test_conv2d.py)."""
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    if attempt % 6 == 2:
        stride = (kh + 2, kw + 1)  # stride larger than the kernel: gaps in the output
    padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    dilation = tuple(int(v) for v in rng.choice([1, 1, 2, 3], size=2))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    return stride, padding, dilation, output_padding


def _draw(rng, attempt, _):
    groups = int(rng.choice([1, 1, 2, 3]))
    Cing, Coutg = (int(v) for v in rng.integers(1, 4, size=2))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride, padding, dilation, output_padding = draw_geometry(rng, attempt, kh, kw)
    H, W = (int(v) for v in rng.integers(1, 7, size=2))
    if attempt % 7 == 3:
        W = 1
    Ho = _out(H, kh, stride[0], padding[0], output_padding[0], dilation[0])
    Wo = _out(W, kw, stride[1], padding[1], output_padding[1], dilation[1])
    if Ho < 1 or Wo < 1:
        return None
    cfg = dict(x=(int(rng.integers(1, 4)), Cing * groups, H, W), w=(Cing * groups, Coutg, kh, kw),
               bias=bool(rng.random() < 0.6), stride=stride, padding=padding,
               output_padding=output_padding, groups=groups, dilation=dilation)
    return cfg, f"x{cfg['x']}-w{cfg['w']}-s{stride}-p{padding}-op{output_padding}-d{dilation}-g{groups}"


CONFIGS = sample_configs(45, seed=20, draw=_draw)


def _arrays(cfg, dtype, seed):
    return conv_arrays(cfg, cfg["w"][1] * cfg["groups"], dtype, seed)


def _geometry(cfg):
    return {k: cfg[k] for k in ("stride", "padding", "output_padding", "groups", "dilation")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_forward_matches_reference(cfg, dtype):
    x, w, b = _arrays(cfg, dtype, 0)
    y = ops.conv_transpose2d(x, w, b, **_geometry(cfg))
    assert y.dtype == x.dtype
    assert_close(y, ref.conv_transpose2d(x, w, b, **_geometry(cfg)), *tol(dtype, 10))


@pytest.mark.parametrize("cfg", CONFIGS)
def test_forward_and_gradients_match_torch(cfg, torch):
    x, w, b = _arrays(cfg, np.float64, 1)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **_geometry(cfg))
    g = random_array(np.random.default_rng(2), tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    expected = dict(y=yt.detach().numpy(), dx=xt.grad.numpy(), dw=wt.grad.numpy(),
                    db=None if b is None else bt.grad.numpy())
    assert_conv_matches(ops.conv_transpose2d, ops.conv_transpose2d_backward, _geometry(cfg), x, w, b, g,
                        expected)


NUMERIC = [c for c in CONFIGS if np.prod(c.values[0]["x"]) <= 40 and np.prod(c.values[0]["w"]) <= 60][:8]


@pytest.mark.parametrize("cfg", NUMERIC)
def test_backward_numerical_gradient(cfg):
    x, w, b = _arrays(cfg, np.float64, 3)
    assert_conv_numerical_gradients(ops.conv_transpose2d, ops.conv_transpose2d_backward, _geometry(cfg),
                                    x, w, b, seed=4)


@pytest.mark.parametrize("cfg", CONFIGS[:12])
def test_is_the_adjoint_of_conv2d(cfg):
    """<conv_transpose2d(x, w), y> == <x, conv2d(y, w)> with the same stride/padding/dilation/groups.

    With output_padding >= stride (allowed when dilation is larger) conv2d yields extra trailing
    rows/columns that no element of x reaches; they are cropped."""
    x, w, _ = _arrays(cfg, np.float64, 5)
    geo = _geometry(cfg)
    y = ops.conv_transpose2d(x, w, **geo)
    v = random_array(np.random.default_rng(6), y.shape)
    back = ops.conv2d(v, w, stride=geo["stride"], padding=geo["padding"], dilation=geo["dilation"],
                      groups=geo["groups"])
    H, W = x.shape[2:]
    assert back.shape[:2] == x.shape[:2] and back.shape[2] >= H and back.shape[3] >= W
    back = back[:, :, :H, :W]
    lhs, rhs = float(np.sum(y * v)), float(np.sum(x * back))
    assert abs(lhs - rhs) <= 1e-10 * (np.abs(y * v).sum() + 1.0)


def test_needs_selects_outputs():
    cfg = CONFIGS[0].values[0]
    x, w, _ = _arrays(cfg, np.float32, 7)
    assert_needs_selects_outputs(ops.conv_transpose2d, ops.conv_transpose2d_backward, _geometry(cfg), x, w)
