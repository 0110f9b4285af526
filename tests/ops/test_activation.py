"""relu / leaky_relu forward and backward against numpy definitions and PyTorch."""
import numpy as np
import pytest

import striate
import striate.ops as ops
from tests.checks import DTYPES, random_array
from tests.conftest import require

SHAPES = [(0,), (1,), (7,), (3, 5), (2, 3, 4, 5), (64, 32, 16, 16)]


def _x(shape, dtype, seed=0):
    x = random_array(np.random.default_rng(seed), shape, dtype)
    if x.size >= 4:
        x.ravel()[:4] = [0.0, -0.0, np.nan, -np.inf]
    return x


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_the_definition(shape, dtype):
    x, dy = _x(shape, dtype), random_array(np.random.default_rng(1), shape, dtype)
    y = ops.relu(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, np.where(np.isnan(x), x, np.where(x > 0, x, 0)))
    np.testing.assert_array_equal(ops.relu_backward(dy, y), np.where(y > 0, dy, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("slope", (0.01, 0.2, -0.5, 0.0))
def test_leaky_relu_matches_the_definition(shape, dtype, slope):
    x, dy = _x(shape, dtype), random_array(np.random.default_rng(2), shape, dtype)
    y = ops.leaky_relu(x, slope)
    with np.errstate(invalid="ignore"):  # -inf * 0 is NaN, in the kernel as in numpy
        np.testing.assert_array_equal(y, np.where(x > 0, x, x * dtype(slope)))
    np.testing.assert_array_equal(ops.leaky_relu_backward(dy, x, slope), np.where(x > 0, dy, dy * dtype(slope)))


@pytest.mark.parametrize("threads", (1, 3))
def test_thread_count_does_not_matter(threads):
    x = _x((64, 32, 16, 16), np.float32)
    before = striate.get_num_threads()
    try:
        striate.set_num_threads(threads)
        y = ops.relu(x)
    finally:
        striate.set_num_threads(before)
    np.testing.assert_array_equal(y, ops.relu(x))


def test_matches_pytorch():
    torch = require("torch")
    x = random_array(np.random.default_rng(3), (4, 3, 5, 5), np.float32)
    dy = random_array(np.random.default_rng(4), x.shape, np.float32)
    for ours, theirs, back in ((ops.relu, torch.relu, lambda y: ops.relu_backward(dy, y)),
                               (lambda a: ops.leaky_relu(a, 0.2),
                                lambda a: torch.nn.functional.leaky_relu(a, 0.2),
                                lambda y: ops.leaky_relu_backward(dy, x, 0.2))):
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(dy))
        y = ours(x)
        np.testing.assert_array_equal(y, ty.detach().numpy())
        np.testing.assert_array_equal(back(y), tx.grad.numpy())


def test_bad_input():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError, match="relu: x must have dtype float32 or float64"):
        ops.relu(x.astype(np.int64))
    with pytest.raises(ValueError, match="relu_backward: y must have the shape of dy"):
        ops.relu_backward(x, np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="leaky_relu_backward: x must have the dtype of dy"):
        ops.leaky_relu_backward(x, x.astype(np.float64))
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        ops.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.relu(np.ones((4, 4), np.float32)[:, ::2])
