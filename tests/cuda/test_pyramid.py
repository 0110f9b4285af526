"""CPU <-> CUDA parity of pyr_down / pyr_up and their adjoints (float32 and float64).

The CPU kernels are the reference. Both devices use the same taps and sum vertically then
horizontally, so float64 agrees to a few ulps and float32 to ~1e-6 of the result's scale
(the CPU's unrolled interior and FMA contraction round differently). Sizes cover tiny planes,
odd output sizes of pyr_up, and planes spanning several GPU tiles (pyr_down: 16 x 32 outputs,
pyr_up: 32 x 64) including partial ones. Skips without a GPU; with STRIATE_REQUIRE_CUDA=1 a
skip is a failure (tests/cuda/conftest.py).
"""
import numpy as np
import pytest

import striate.ops as ops
from tests.checks import DTYPES, assert_adjoint, assert_close, random_array

SIZES = [(1, 1), (1, 2), (2, 1), (1, 7), (6, 1), (2, 3), (3, 5), (4, 4), (7, 9), (16, 16), (17, 31),
         (33, 65), (34, 66), (64, 128), (67, 45), (1, 200), (200, 1), (131, 257)]


def _up_sizes(H, W):
    """pyr_up's output sizes for an H x W input: 2n, and 2n - 1 / 2n + 1 per side."""
    return [(2 * H + dh, 2 * W + dw) for dh in (0, -1, 1) for dw in (0, -1, 1)
            if 2 * H + dh >= 1 and 2 * W + dw >= 1]


UP_CASES = [pytest.param(hw, out, id=f"{hw}->{out}".replace(" ", "")) for hw in SIZES for out in _up_sizes(*hw)]


def _assert_parity(cp, gpu, cpu, what):
    assert gpu.dtype == cpu.dtype, what
    scale = max(1.0, float(np.max(np.abs(cpu))))
    atol, rtol = (2e-6 * scale, 1e-6) if cpu.dtype == np.float32 else (1e-14 * scale, 1e-13)
    assert_close(cp.asnumpy(gpu), cpu, atol, rtol, what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", SIZES, ids=str)
def test_down_and_its_adjoint_match_cpu(cp, hw, dtype):
    rng = np.random.default_rng(0)
    x = random_array(rng, (2, 3) + hw, dtype)
    y = ops.pyr_down(x)
    _assert_parity(cp, ops.pyr_down(cp.asarray(x)), y, "pyr_down")
    dy = random_array(rng, y.shape, dtype)
    _assert_parity(cp, ops.pyr_down_backward(cp.asarray(dy), x.shape), ops.pyr_down_backward(dy, x.shape),
                   "pyr_down_backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw,out", UP_CASES)
def test_up_and_its_adjoint_match_cpu(cp, hw, out, dtype):
    rng = np.random.default_rng(1)
    x = random_array(rng, (2, 3) + hw, dtype)
    y = ops.pyr_up(x, output_size=out)
    _assert_parity(cp, ops.pyr_up(cp.asarray(x), output_size=out), y, "pyr_up")
    dy = random_array(rng, y.shape, dtype)
    _assert_parity(cp, ops.pyr_up_backward(cp.asarray(dy), x.shape), ops.pyr_up_backward(dy, x.shape),
                   "pyr_up_backward")


def test_up_default_size_is_double(cp):
    x = random_array(np.random.default_rng(2), (1, 2, 5, 3), np.float32)
    y = ops.pyr_up(cp.asarray(x))
    assert y.shape == (1, 2, 10, 6)
    _assert_parity(cp, y, ops.pyr_up(x), "pyr_up")


@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (7, 9), (33, 65)], ids=str)
def test_down_backward_is_the_adjoint_on_gpu(cp, hw):
    rng = np.random.default_rng(3)
    x = random_array(rng, (2, 2) + hw)
    g = random_array(rng, (2, 2, (hw[0] + 1) // 2, (hw[1] + 1) // 2))
    assert_adjoint(lambda v: cp.asnumpy(ops.pyr_down(cp.asarray(v))),
                   lambda v: cp.asnumpy(ops.pyr_down_backward(cp.asarray(v), x.shape)), x, g)


@pytest.mark.parametrize("hw,out", [((1, 1), (3, 1)), ((2, 3), (5, 7)), ((7, 9), (13, 19)), ((33, 65), (67, 130))],
                         ids=str)
def test_up_backward_is_the_adjoint_on_gpu(cp, hw, out):
    rng = np.random.default_rng(4)
    x = random_array(rng, (2, 2) + hw)
    g = random_array(rng, (2, 2) + out)
    assert_adjoint(lambda v: cp.asnumpy(ops.pyr_up(cp.asarray(v), output_size=out)),
                   lambda v: cp.asnumpy(ops.pyr_up_backward(cp.asarray(v), x.shape)), x, g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_planes_match_cpu(cp, dtype):
    """More tiles than one block row of the grid, every plane its own image."""
    rng = np.random.default_rng(5)
    x = random_array(rng, (3, 40, 70, 90), dtype)
    _assert_parity(cp, ops.pyr_down(cp.asarray(x)), ops.pyr_down(x), "pyr_down")
    _assert_parity(cp, ops.pyr_up(cp.asarray(x)), ops.pyr_up(x), "pyr_up")
    dy = random_array(rng, (3, 40, 35, 45), dtype)
    _assert_parity(cp, ops.pyr_down_backward(cp.asarray(dy), x.shape), ops.pyr_down_backward(dy, x.shape),
                   "pyr_down_backward")


def test_backward_on_other_streams(cp):
    """The adjoint tap lists are uploaded once and readable from any stream afterwards."""
    rng = np.random.default_rng(6)
    x_shape = (1, 2, 23, 41)
    dy_down = random_array(rng, (1, 2, 12, 21), np.float64)
    dy_up = random_array(rng, (1, 2, 47, 81), np.float64)
    for _ in range(2):
        stream = cp.cuda.Stream(non_blocking=True)
        with stream:
            down = ops.pyr_down_backward(cp.asarray(dy_down), x_shape)
            up = ops.pyr_up_backward(cp.asarray(dy_up), x_shape)
            stream.synchronize()
        _assert_parity(cp, down, ops.pyr_down_backward(dy_down, x_shape), "pyr_down_backward")
        _assert_parity(cp, up, ops.pyr_up_backward(dy_up, x_shape), "pyr_up_backward")


def test_round_trip_keeps_constants(cp):
    x = cp.full((1, 3, 9, 14), 3.25)
    up = ops.pyr_up(ops.pyr_down(x), output_size=(9, 14))
    assert_close(cp.asnumpy(up), np.full((1, 3, 9, 14), 3.25), 1e-14, 1e-14)


def test_gpu_arguments_are_checked(cp):
    x = cp.zeros((1, 1, 3, 5))
    with pytest.raises(ValueError, match="output_size"):
        ops.pyr_up(x, output_size=(8, 10))
    with pytest.raises(ValueError, match="dy must have shape"):
        ops.pyr_down_backward(cp.zeros((1, 1, 3, 3)), (1, 1, 3, 5))
