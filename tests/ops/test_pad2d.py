"""pad2d / pad2d_backward against the numpy reference and torch.nn.functional.pad."""
import numpy as np
import pytest

import striate.ops as ops
from tests import reference as ref
from tests.checks import DTYPES, assert_adjoint, assert_close, numerical_grad, random_array, tol

MODES = ("constant", "reflect", "replicate", "circular")


def _max_pad(mode, n):
    """Largest pad PyTorch allows for a side of length n."""
    return {"reflect": n - 1, "circular": n}.get(mode, n + 2)


def _configs(count=48, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        mode = MODES[i % 4]
        H, W = (int(v) for v in rng.integers(1, 8, size=2))
        if i % 10 == 0:
            H = 1  # one-row planes
        if i % 10 == 5:
            W = 1
        pad = []
        for n in (W, W, H, H):
            hi = _max_pad(mode, n)
            pad.append(int(rng.integers(0, hi + 1)) if rng.random() < 0.7 else hi)
        N, C = (int(v) for v in rng.integers(1, 3, size=2))
        out.append(pytest.param((N, C, H, W), tuple(pad), mode, id=f"{mode}-{N}x{C}x{H}x{W}-{pad}"))
    return out


CONFIGS = _configs()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,pad,mode", CONFIGS)
def test_forward_matches_reference(shape, pad, mode, dtype):
    rng = np.random.default_rng(1)
    x = random_array(rng, shape, dtype)
    value = 1.5 if mode == "constant" else 0.0
    y = ops.pad2d(x, pad, mode, value)
    assert y.dtype == x.dtype
    # A copy is exact in any dtype.
    assert_close(y, ref.pad2d(x, pad, mode, value), 0, 0)


@pytest.mark.parametrize("shape,pad,mode", CONFIGS)
def test_forward_and_backward_match_torch(shape, pad, mode, torch):
    rng = np.random.default_rng(2)
    x = random_array(rng, shape)
    y = ops.pad2d(x, pad, mode)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.pad(xt, pad, mode=mode)
    assert_close(y, yt.detach().numpy(), 0, 0)
    g = random_array(rng, y.shape)
    (yt * torch.tensor(g)).sum().backward()
    dx = ops.pad2d_backward(g, shape, pad, mode)
    assert_close(dx, xt.grad.numpy(), *tol(np.float64))
    dx32 = ops.pad2d_backward(g.astype(np.float32), shape, pad, mode)
    assert dx32.dtype == np.float32
    assert_close(dx32, xt.grad.numpy(), *tol(np.float32, 4))


@pytest.mark.parametrize("shape,pad,mode", CONFIGS[:16])
def test_backward_is_the_adjoint(shape, pad, mode):
    rng = np.random.default_rng(3)
    x = random_array(rng, shape)
    g = random_array(rng, ops.pad2d(x, pad, mode).shape)
    assert_adjoint(lambda v: ops.pad2d(v, pad, mode), lambda v: ops.pad2d_backward(v, shape, pad, mode), x, g)


@pytest.mark.parametrize("mode", MODES)
def test_backward_numerical_gradient(mode):
    rng = np.random.default_rng(4)
    shape, pad = (1, 2, 3, 4), (2, 1, 2, 0) if mode != "constant" else (3, 1, 0, 2)
    x = random_array(rng, shape)
    g = random_array(rng, ops.pad2d(x, pad, mode).shape)
    expected = numerical_grad(lambda v: ops.pad2d(v, pad, mode), x, g)
    assert_close(ops.pad2d_backward(g, shape, pad, mode), expected, 1e-8, 1e-7)


def test_zero_pad_is_a_copy():
    x = random_array(np.random.default_rng(5), (2, 3, 4, 5), np.float32)
    y = ops.pad2d(x, (0, 0, 0, 0), "reflect")
    assert y is not x and not np.shares_memory(x, y)
    assert_close(y, x, 0, 0)


def test_reflect_and_circular_limits():
    x = np.zeros((1, 1, 3, 4))
    ops.pad2d(x, (3, 3, 2, 2), "reflect")  # pad == dim - 1: allowed
    ops.pad2d(x, (4, 4, 3, 3), "circular")  # pad == dim: allowed
    with pytest.raises(ValueError, match="reflect padding"):
        ops.pad2d(x, (0, 0, 3, 0), "reflect")
    with pytest.raises(ValueError, match="circular padding"):
        ops.pad2d(x, (5, 0, 0, 0), "circular")
