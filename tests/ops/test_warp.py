"""warp_affine against torch.nn.functional.affine_grid + grid_sample and the numpy reference."""
import warnings

import numpy as np
import pytest

import striate.ops as ops
from tests import reference as ref
from tests.checks import assert_close, random_array, tol

MODES = ("bilinear", "nearest")
PADDING = ("zeros", "border", "reflection")
# (input shape, output size or None)
SHAPES = [((2, 3, 5, 7), None), ((1, 2, 6, 4), (3, 9)), ((2, 1, 1, 5), (4, 1)), ((1, 2, 8, 8), (1, 1)),
          ((2, 2, 4, 3), (7, 6))]


def _thetas(rng, n, reach):
    """Random rotation / scale / shear / translation; `reach` scales the translation so that
    part of the output samples outside the source (exercising the padding modes)."""
    out = []
    for _ in range(n):
        angle = rng.uniform(-np.pi, np.pi)
        sx, sy = rng.uniform(0.5, 1.6, size=2)
        shear = rng.uniform(-0.4, 0.4)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        lin = rot @ np.array([[sx, shear], [0.0, sy]])
        out.append(np.hstack([lin, rng.uniform(-reach, reach, size=(2, 1))]))
    return np.ascontiguousarray(np.stack(out))


def cases(shapes):
    """(shape, out, mode, pad, align) params over shapes x MODES x PADDING x align_corners."""
    return [pytest.param(shape, out, mode, pad, align, id=f"{mode}-{pad}-ac{int(align)}-{shape}->{out}".replace(" ", ""))
            for shape, out in shapes for mode in MODES for pad in PADDING for align in (False, True)]


CASES = cases(SHAPES)


def _torch_warp(torch, x, theta, out, mode, pad, align):
    N, C, H, W = x.shape
    Ho, Wo = out if out is not None else (H, W)
    with warnings.catch_warnings():
        # PyTorch notes that unit-size grids with align_corners=True use the centre (0), which is
        # exactly the convention warp_affine follows; the note itself is not a problem.
        warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid")
        grid = torch.nn.functional.affine_grid(torch.tensor(theta), [N, C, Ho, Wo], align_corners=align)
    y = torch.nn.functional.grid_sample(torch.tensor(x), grid, mode=mode, padding_mode=pad,
                                        align_corners=align)
    return y.numpy()


@pytest.mark.parametrize("shape,out,mode,pad,align", CASES)
def test_matches_torch(shape, out, mode, pad, align, torch):
    rng = np.random.default_rng(0)
    x = random_array(rng, shape)
    for reach in (0.3, 2.5):
        theta = _thetas(rng, shape[0], reach)
        expected = _torch_warp(torch, x, theta, out, mode, pad, align)
        y = ops.warp_affine(x, theta, out, mode, pad, align)
        assert y.dtype == np.float64
        assert_close(y, expected, *tol(np.float64, 100), "float64")
        # float32: the same theta values (rounded once), compared with torch in float64.
        x32, t32 = x.astype(np.float32), theta.astype(np.float32)
        expected32 = _torch_warp(torch, x32.astype(np.float64), t32.astype(np.float64), out, mode, pad, align)
        y32 = ops.warp_affine(x32, t32, out, mode, pad, align)
        assert y32.dtype == np.float32
        assert_close(y32, expected32, *tol(np.float32, 5), "float32")


@pytest.mark.parametrize("shape,out,mode,pad,align", CASES[::3])
def test_matches_reference(shape, out, mode, pad, align):
    rng = np.random.default_rng(1)
    x = random_array(rng, shape)
    theta = _thetas(rng, shape[0], 1.5)
    y = ops.warp_affine(x, theta, out, mode, pad, align)
    assert_close(y, ref.warp_affine(x, theta, out, mode, pad, align), *tol(np.float64, 100))


@pytest.mark.parametrize("align", (False, True))
@pytest.mark.parametrize("mode", MODES)
def test_identity_returns_the_input(mode, align):
    x = random_array(np.random.default_rng(2), (2, 3, 6, 5), np.float32)
    theta = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (2, 1, 1))
    assert_close(ops.warp_affine(x, theta, mode=mode, align_corners=align), x, *tol(np.float32))


def test_each_sample_uses_its_own_matrix():
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 2, 5, 6))
    theta = _thetas(rng, 3, 0.5)
    y = ops.warp_affine(x, theta, (4, 7))
    for n in range(3):
        single = ops.warp_affine(np.ascontiguousarray(x[n:n + 1]), np.ascontiguousarray(theta[n:n + 1]), (4, 7))
        assert_close(y[n:n + 1], single, 0, 0)


def test_far_away_coordinates_sample_zero_or_the_border(torch):
    x = random_array(np.random.default_rng(4), (1, 1, 4, 4))
    theta = np.array([[[1.0, 0.0, 1e6], [0.0, 1.0, -1e6]]])
    assert np.all(ops.warp_affine(x, theta) == 0)
    y = ops.warp_affine(x, theta, padding_mode="border")
    assert_close(y, np.full(y.shape, x[0, 0, 0, 3]), 0, 0)
    assert_close(y, _torch_warp(torch, x, theta, None, "bilinear", "border", False), 1e-12, 1e-12)
