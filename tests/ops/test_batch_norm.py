"""batch_norm / batch_norm_backward against the float64 reference and PyTorch."""
import numpy as np
import pytest

import striate
import striate.ops as ops
from tests import reference as ref
from tests.checks import DTYPES, assert_close, random_array
from tests.conftest import require

SHAPES = [(2, 3), (5, 4, 7), (4, 3, 5, 6), (2, 4, 3, 3, 2), (1, 2, 1, 9), (16, 64, 8, 8), (3, 1, 40, 40)]
TOL = {np.float32: (1e-5, 1e-4), np.float64: (1e-12, 1e-10)}


def _inputs(shape, dtype, seed=0, offset=0.0, affine=True):
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype) * dtype(3) + dtype(offset)
    C = shape[1]
    w = random_array(rng, (C,), dtype) if affine else None
    b = random_array(rng, (C,), dtype) if affine else None
    dy = random_array(rng, shape, dtype)
    return x, w, b, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", (True, False))
def test_matches_the_reference(shape, dtype, affine):
    x, w, b, dy = _inputs(shape, dtype, affine=affine)
    atol, rtol = TOL[dtype]
    y, mean, var, invstd = ops.batch_norm(x, w, b, 1e-5)
    ry, rmean, rvar, rinv = ref.batch_norm(x, w, b, 1e-5)
    assert y.dtype == dtype and mean.dtype == dtype and y.shape == x.shape
    for got, want, what in ((y, ry, "y"), (mean, rmean, "mean"), (var, rvar, "var"), (invstd, rinv, "invstd")):
        assert_close(got, want, atol, rtol, what)
    dx, dw, db = ops.batch_norm_backward(dy, x, w, mean, invstd)
    rdx, rdw, rdb = ref.batch_norm_backward(dy, x, w, 1e-5)
    size = x.size // x.shape[1]
    assert_close(dx, rdx, atol, rtol, "dx")
    assert_close(db, rdb, atol * size, rtol, "dbias")
    if affine:
        assert_close(dw, rdw, atol * size, rtol, "dweight")
    else:
        assert dw is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_values_far_from_zero_keep_their_variance(dtype):
    # mean 1e4, standard deviation 1: a one-pass sum of squares would lose every digit in float32
    x, w, b, _ = _inputs((8, 4, 6, 6), dtype, seed=3, offset=1e4)
    x = x / dtype(3)
    _, mean, var, _ = ops.batch_norm(x, w, b)
    _, rmean, rvar, _ = ref.batch_norm(x, w, b)
    assert_close(mean, rmean, 1e-2 if dtype == np.float32 else 1e-9, 1e-6)
    assert_close(var, rvar, 1e-3 if dtype == np.float32 else 1e-9, 1e-3 if dtype == np.float32 else 1e-9)


@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, False, False), (True, True, True)])
def test_needs_selects_the_gradients(needs):
    x, w, b, dy = _inputs((4, 3, 5, 5), np.float64)
    _, mean, _, invstd = ops.batch_norm(x, w, b)
    full = ops.batch_norm_backward(dy, x, w, mean, invstd)
    part = ops.batch_norm_backward(dy, x, w, mean, invstd, needs=needs)
    for want, got, need in zip(full, part, needs):
        if need:
            np.testing.assert_array_equal(got, want)
        else:
            assert got is None


@pytest.mark.parametrize("threads", (1, 2, 3))
def test_thread_count_does_not_change_the_result(threads):
    x, w, b, dy = _inputs((16, 64, 8, 8), np.float32, seed=5)
    before = striate.get_num_threads()
    try:
        striate.set_num_threads(1)
        one = ops.batch_norm(x, w, b)
        striate.set_num_threads(threads)
        many = ops.batch_norm(x, w, b)
    finally:
        striate.set_num_threads(before)
    for a, m in zip(one, many):
        np.testing.assert_array_equal(a, m)


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 5), (3, 2, 7)])
def test_matches_pytorch(shape):
    torch = require("torch")
    x, w, b, dy = _inputs(shape, np.float32, seed=7)
    y, mean, var, invstd = ops.batch_norm(x, w, b, 1e-3)
    dx, dw, db = ops.batch_norm_backward(dy, x, w, mean, invstd)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    rm, rv = torch.zeros(shape[1]), torch.ones(shape[1])
    ty = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, True, 1.0, 1e-3)
    ty.backward(torch.tensor(dy))
    for got, want, what in ((y, ty, "y"), (mean, rm, "mean"), (var, rv, "var"), (dx, tx.grad, "dx"),
                            (dw, tw.grad, "dweight"), (db, tb.grad, "dbias")):
        assert_close(got, want.detach().numpy(), 1e-5, 1e-4, what)


def test_bad_input():
    x = np.ones((4, 3, 2, 2), np.float32)
    c = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="batch_norm: x must be"):
        ops.batch_norm(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ops.batch_norm(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="must not be empty"):
        ops.batch_norm(np.ones((0, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        ops.batch_norm(x, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="bias must have the dtype"):
        ops.batch_norm(x, c, np.ones(3))
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.batch_norm(x.astype(np.int32))
    with pytest.raises(ValueError, match="eps must be >= 0"):
        ops.batch_norm(x, eps=-1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.batch_norm(np.ones((3, 4, 4), np.float32)[:, ::2])
    _, mean, _, invstd = ops.batch_norm(x, c, c)
    with pytest.raises(ValueError, match="dy must have the shape of x"):
        ops.batch_norm_backward(np.ones((4, 3, 2, 1), np.float32), x, c, mean, invstd)
    with pytest.raises(TypeError, match="mean and invstd are required"):
        ops.batch_norm_backward(x, x, c, None, invstd)
    with pytest.raises(ValueError, match="needs must be a triple"):
        ops.batch_norm_backward(x, x, c, mean, invstd, needs=(True,))
