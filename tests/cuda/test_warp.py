"""CPU <-> CUDA parity of warp_affine (float32 and float64).

Both devices compute each source coordinate in double with the same code
(csrc/common/warp_coords.h) and sample in double, so results agree to rounding;
random matrices keep nearest-mode samples away from exact .5 ties, where a different
rounding of the coordinate would pick another pixel. Skips without a GPU; with
STRIATE_REQUIRE_CUDA=1 a skip is a failure (tests/cuda/conftest.py).
"""
import numpy as np
import pytest

import striate.ops as ops
from tests.checks import DTYPES, assert_close, random_array
from tests.ops.test_warp import MODES, SHAPES as CPU_SHAPES, _thetas, cases

# The CPU tests' shapes plus one-pixel and large planes.
SHAPES = CPU_SHAPES + [((1, 1, 1, 1), None), ((3, 4, 37, 70), (50, 33)), ((2, 3, 64, 64), (129, 257))]


def _assert_parity(cp, gpu, cpu, what):
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape, what
    scale = max(1.0, float(np.max(np.abs(cpu))))
    atol, rtol = (2e-6 * scale, 1e-6) if cpu.dtype == np.float32 else (1e-14 * scale, 1e-13)
    assert_close(cp.asnumpy(gpu), cpu, atol, rtol, what)


CASES = cases(SHAPES)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,out,mode,pad,align", CASES)
def test_matches_cpu(cp, shape, out, mode, pad, align, dtype):
    rng = np.random.default_rng(0)
    x = random_array(rng, shape, dtype)
    theta = _thetas(rng, shape[0], 1.5).astype(dtype)
    expected = ops.warp_affine(x, theta, out, mode, pad, align)
    _assert_parity(cp, ops.warp_affine(cp.asarray(x), cp.asarray(theta), out, mode, pad, align), expected,
                   "warp_affine")


@pytest.mark.parametrize("align", (False, True))
@pytest.mark.parametrize("mode", MODES)
def test_identity_returns_the_input(cp, mode, align):
    x = random_array(np.random.default_rng(1), (2, 3, 6, 5), np.float32)
    theta = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (2, 1, 1))
    y = ops.warp_affine(cp.asarray(x), cp.asarray(theta), mode=mode, align_corners=align)
    assert_close(cp.asnumpy(y), x, 1e-6, 1e-6)


FAR_THETAS = np.array([[[1.0, 0.0, 1e6], [0.0, 1.0, -1e6]],
                       [[1.0, 0.0, 1e25], [0.0, 1e30, 3.0]],
                       [[1.0, 0.0, np.inf], [0.0, 1.0, -np.inf]],
                       [[np.nan, 0.0, 0.0], [0.0, 1.0, 0.0]]])


@pytest.mark.parametrize("pad", ("zeros", "border"))
def test_far_away_and_non_finite_coordinates_match_cpu(cp, pad):
    """Huge, infinite and NaN matrices sample zeros or the border, identically on both devices."""
    x = random_array(np.random.default_rng(2), (4, 2, 5, 6))
    for mode in MODES:
        for align in (False, True):
            expected = ops.warp_affine(x, FAR_THETAS, (3, 4), mode, pad, align)
            got = cp.asnumpy(ops.warp_affine(cp.asarray(x), cp.asarray(FAR_THETAS), (3, 4), mode, pad, align))
            assert_close(got, expected, 0, 0, f"{mode}-ac{int(align)}")


def test_far_away_reflection_stays_finite(cp):
    """Reflection of a coordinate ~1e25 away lands on an arbitrary pixel (a one-ulp difference in
    the coordinate moves it), so only finiteness is compared; non-finite matrices give zeros."""
    x = random_array(np.random.default_rng(3), (4, 2, 5, 6))
    for mode in MODES:
        for align in (False, True):
            got = cp.asnumpy(ops.warp_affine(cp.asarray(x), cp.asarray(FAR_THETAS), (3, 4), mode,
                                             "reflection", align))
            assert np.all(np.isfinite(got))
            assert np.all(got[2:] == 0)


def test_gpu_arguments_are_checked(cp):
    x = cp.zeros((2, 1, 4, 4))
    with pytest.raises(TypeError, match="same device"):
        ops.warp_affine(x, np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="theta must have shape"):
        ops.warp_affine(x, cp.zeros((1, 2, 3)))
