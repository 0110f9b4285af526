"""CPU <-> CUDA parity of pad2d and its adjoint, every mode, float32 and float64.

The forward is a copy and the backward gathers in the CPU's order
(csrc/cuda/pad2d.cu), so both are compared exactly.
Skips without a GPU; with STRIATE_REQUIRE_CUDA=1 a skip is a failure (conftest.py).
"""
import numpy as np
import pytest

import striate.ops as ops
from tests.checks import DTYPES, random_array
from tests.ops.test_pad2d import CONFIGS, MODES

# Larger planes and pads at PyTorch's limits, rows longer than one block, 1-pixel planes
# and big replicate / constant pads (several border cells per source cell).
EXTRA = [
    ((2, 3, 37, 41), (1, 1, 1, 1)),
    ((2, 3, 37, 41), (36, 40, 0, 36)),
    ((1, 2, 3, 700), (5, 9, 2, 1)),
    ((4, 16, 8, 8), (3, 4, 7, 2)),
    ((1, 1, 1, 1), (0, 0, 0, 0)),
    ((3, 2, 1, 5), (4, 2, 0, 0)),
]


def _limit(mode, pad, shape):
    """pad clipped to what PyTorch allows for mode (reflect < dim, circular <= dim)."""
    H, W = shape[2], shape[3]
    cap = {"reflect": (W - 1, W - 1, H - 1, H - 1), "circular": (W, W, H, H)}.get(mode)
    return pad if cap is None else tuple(min(p, c) for p, c in zip(pad, cap))


CASES = [pytest.param(*c.values, id=c.id) for c in CONFIGS] + [
    pytest.param(shape, _limit(mode, pad, shape), mode, id=f"{mode}-{shape}-{pad}")
    for shape, pad in EXTRA for mode in MODES
] + [pytest.param((1, 2, 6, 5), (30, 0, 17, 25), m, id=f"{m}-big-pad") for m in ("constant", "replicate")]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,pad,mode", CASES)
def test_pad2d_forward_and_backward_match_cpu_exactly(cp, shape, pad, mode, dtype):
    rng = np.random.default_rng(20)
    x = random_array(rng, shape, dtype)
    value = -2.5 if mode == "constant" else 0.0
    y = ops.pad2d(x, pad, mode, value)
    y_gpu = ops.pad2d(cp.asarray(x), pad, mode, value)
    assert isinstance(y_gpu, cp.ndarray) and y_gpu.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(y_gpu), y)
    dy = random_array(rng, y.shape, dtype)
    dx = ops.pad2d_backward(dy, shape, pad, mode)
    dx_gpu = ops.pad2d_backward(cp.asarray(dy), shape, pad, mode)
    assert isinstance(dx_gpu, cp.ndarray) and dx_gpu.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(dx_gpu), dx)


def test_pad2d_mixed_dtypes_and_devices_are_refused(cp):
    with pytest.raises(TypeError):
        ops.pad2d(cp.zeros((1, 1, 2, 2), dtype=cp.int32), (1, 1, 1, 1))
    with pytest.raises(ValueError, match="reflect padding"):
        ops.pad2d(cp.zeros((1, 1, 2, 2)), (2, 0, 0, 0), "reflect")
