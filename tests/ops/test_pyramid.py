"""pyr_down / pyr_up and their adjoints against the reference and OpenCV (real photos, odd sizes)."""
import numpy as np
import pytest

import striate
import striate.ops as ops
from tests import reference as ref
from tests.checks import DTYPES, assert_adjoint, assert_close, random_array, tol

SIZES = [(1, 1), (1, 2), (2, 1), (1, 7), (6, 1), (2, 2), (2, 3), (3, 5), (4, 4), (5, 5), (7, 9),
         (8, 13), (16, 16), (17, 31)]


def _up_sizes(H, W):
    """cv2.pyrUp's accepted output sizes: 2n, and 2n - 1 / 2n + 1."""
    out = []
    for dh in (0, -1, 1):
        for dw in (0, 1, -1):
            if 2 * H + dh >= 1 and 2 * W + dw >= 1:
                out.append((2 * H + dh, 2 * W + dw))
    return out


UP_CASES = [pytest.param(hw, out, id=f"{hw}->{out}".replace(" ", "")) for hw in SIZES for out in _up_sizes(*hw)]


def _opencv_reads_garbage(in_hw, out_hw):
    """cv2.pyrUp of a one-column image to an odd width leaves its last column uninitialised
    (OpenCV's single-column branch never writes it), so there is nothing to compare with."""
    return in_hw[1] == 1 and out_hw[1] % 2 == 1


def _planes(image):
    """An H x W (x 3) photo as float32 (1, C, H, W)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


# ---------------------------------------------------------------- pyr_down


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", SIZES, ids=str)
def test_down_matches_reference(hw, dtype):
    x = random_array(np.random.default_rng(0), (2, 3) + hw, dtype)
    y = ops.pyr_down(x)
    assert y.dtype == dtype and y.shape == (2, 3, (hw[0] + 1) // 2, (hw[1] + 1) // 2)
    assert_close(y, ref.pyr_down(x), *tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", SIZES, ids=str)
def test_down_matches_opencv(hw, dtype, cv2):
    x = random_array(np.random.default_rng(1), (1, 2) + hw, dtype)
    y = ops.pyr_down(x)
    for c in range(2):
        assert_close(y[0, c], cv2.pyrDown(x[0, c]), *tol(dtype))


@pytest.mark.parametrize("crop", [None, (511, 509), (300, 257), (3, 512)])
def test_down_matches_opencv_on_photos(crop, cv2, skimage_data):
    for image in (skimage_data.camera(), skimage_data.astronaut()):
        if crop is not None:
            image = image[:crop[0], :crop[1]]
        x = _planes(image)
        y = ops.pyr_down(x)
        for c in range(x.shape[1]):
            assert_close(y[0, c], cv2.pyrDown(x[0, c]), 1e-4, 1e-6)


@pytest.mark.parametrize("hw", SIZES, ids=str)
def test_down_backward_is_the_adjoint(hw):
    rng = np.random.default_rng(2)
    x = random_array(rng, (2, 2) + hw)
    g = random_array(rng, ops.pyr_down(x).shape)
    assert_adjoint(ops.pyr_down, lambda v: ops.pyr_down_backward(v, x.shape), x, g)


# ---------------------------------------------------------------- pyr_up


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw,out", UP_CASES)
def test_up_matches_reference(hw, out, dtype):
    x = random_array(np.random.default_rng(3), (2, 2) + hw, dtype)
    y = ops.pyr_up(x, output_size=out)
    assert y.dtype == dtype and y.shape == (2, 2) + out
    assert_close(y, ref.pyr_up(x, out), *tol(dtype))


@pytest.mark.parametrize("hw,out", [c for c in UP_CASES if not _opencv_reads_garbage(*c.values)])
def test_up_matches_opencv(hw, out, cv2):
    for dtype in DTYPES:
        x = random_array(np.random.default_rng(4), (1, 2) + hw, dtype)
        y = ops.pyr_up(x, output_size=out)
        for c in range(2):
            assert_close(y[0, c], cv2.pyrUp(x[0, c], dstsize=(out[1], out[0])), *tol(dtype))


def test_up_default_size_is_double():
    x = random_array(np.random.default_rng(5), (1, 1, 3, 4))
    assert ops.pyr_up(x).shape == (1, 1, 6, 8)
    assert_close(ops.pyr_up(x), ops.pyr_up(x, output_size=(6, 8)), 0, 0)


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("crop", [None, (301, 257)])
def test_up_matches_opencv_on_photos(crop, odd, cv2, skimage_data):
    for image in (skimage_data.camera(), skimage_data.astronaut()):
        if crop is not None:
            image = image[:crop[0], :crop[1]]
        x = _planes(image)
        H, W = x.shape[2:]
        out = (2 * H + 1, 2 * W - 1) if odd else (2 * H, 2 * W)
        y = ops.pyr_up(x, output_size=out)
        for c in range(x.shape[1]):
            assert_close(y[0, c], cv2.pyrUp(x[0, c], dstsize=(out[1], out[0])), 1e-4, 1e-6)


@pytest.mark.parametrize("hw,out", UP_CASES[::2])
def test_up_backward_is_the_adjoint(hw, out):
    rng = np.random.default_rng(6)
    x = random_array(rng, (2, 2) + hw)
    g = random_array(rng, (2, 2) + out)
    assert_adjoint(lambda v: ops.pyr_up(v, output_size=out), lambda v: ops.pyr_up_backward(v, x.shape), x, g)


def test_down_then_up_round_trip_keeps_constants():
    """Both filters have unit DC gain, so a constant image survives pyr_down -> pyr_up."""
    x = np.full((1, 3, 9, 14), 3.25)
    down = ops.pyr_down(x)
    assert_close(down, np.full(down.shape, 3.25), *tol(np.float64))
    up = ops.pyr_up(down, output_size=(9, 14))
    assert_close(up, x, *tol(np.float64))


@pytest.mark.parametrize("out", [(8, 10), (7, 7), (6, 12), (4, 10), (6, 8), (0, 10)])
def test_up_rejects_other_sizes(out):
    x = np.zeros((1, 1, 3, 5))
    with pytest.raises(ValueError, match="output_size"):
        ops.pyr_up(x, output_size=out)


def test_thread_count_does_not_change_results():
    x = random_array(np.random.default_rng(7), (2, 3, 67, 45), np.float32)
    results = []
    for threads in (1, 2):
        striate.set_num_threads(threads)
        results.append((ops.pyr_down(x), ops.pyr_up(x, output_size=(133, 91)),
                        ops.pyr_down_backward(ops.pyr_down(x), x.shape)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
