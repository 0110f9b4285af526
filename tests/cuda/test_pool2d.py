"""CPU <-> CUDA parity of max / average / sum pooling, forward and backward.

The CUDA kernels (csrc/cuda/pool2d.cu) share the CPU's per-cell math and add in
the CPU's order, so max pooling (values, indices including ties and NaN) and
its gradient are compared exactly; average pooling within a few ulps.
Skips without a GPU; with STRIATE_REQUIRE_CUDA=1 a skip is a failure (conftest.py).
"""
import numpy as np
import pytest

import striate.ops as ops
from striate import _backend
from tests.checks import DTYPES, assert_close, random_array, tol
from tests.ops.test_pool2d import AVG_CONFIGS, DIVISORS, FAST_2X2, MAX_CONFIGS, _inputs

# Larger planes: several blocks per grid, rows longer than one block, the vectorised
# 2x2 path (W a multiple of 4) and its scalar fallback (W odd, odd H with ceil_mode).
BIG = [
    dict(shape=(3, 5, 64, 96), kernel=(2, 2), stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False),
    dict(shape=(2, 3, 33, 40), kernel=(2, 2), stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=True),
    dict(shape=(2, 3, 31, 37), kernel=(2, 2), stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=True),
    dict(shape=(1, 2, 5, 600), kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=True),
    dict(shape=(4, 8, 29, 23), kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(2, 2), ceil_mode=False),
    dict(shape=(1, 1, 1, 1), kernel=(1, 1), stride=None, padding=(0, 0), dilation=(1, 1), ceil_mode=False),
]
MAX_CASES = [c.values[0] for c in MAX_CONFIGS] + BIG


def _geo(cfg):
    return dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])


def _avg_geo(cfg, divisor, count_include_pad):
    return dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad,
                divisor_override=divisor)


def _assert_same(gpu, cpu, what):
    np.testing.assert_array_equal(_backend.to_device(gpu, "cpu"), cpu, err_msg=what)


@pytest.mark.parametrize("kind", ("normal", "ties", "nan"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", MAX_CASES, ids=lambda c: f"{c['shape']}-k{c['kernel']}-s{c['stride']}"
                         f"-p{c['padding']}-d{c['dilation']}-ceil{int(c['ceil_mode'])}")
def test_max_forward_and_backward_match_cpu_exactly(cp, cfg, dtype, kind):
    rng = np.random.default_rng(10)
    x = _inputs(kind, cfg, dtype, rng)
    y, idx = ops.max_pool2d(x, **_geo(cfg))
    y_gpu, idx_gpu = ops.max_pool2d(cp.asarray(x), **_geo(cfg))
    assert isinstance(y_gpu, cp.ndarray) and y_gpu.dtype == dtype and idx_gpu.dtype == np.int64
    _assert_same(idx_gpu, idx, "indices")
    _assert_same(y_gpu, y, "y")  # NaN matches NaN in assert_array_equal

    dy = random_array(rng, y.shape, dtype)
    dx = ops.max_pool2d_backward(dy, idx, x.shape)
    dy_gpu = cp.asarray(dy)
    # The gather over covering windows (geometry given) and the ordered per-plane scatter
    # (no geometry) both add in the CPU's order.
    _assert_same(ops.max_pool2d_backward(dy_gpu, idx_gpu, x.shape, **_geo(cfg)), dx, "dx, gather")
    _assert_same(ops.max_pool2d_backward(dy_gpu, idx_gpu, x.shape), dx, "dx, ordered")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", FAST_2X2 + [(8, 12), (9, 16), (6, 4), (3, 2)], ids=str)
def test_max_2x2_fast_path_matches_cpu(cp, hw, dtype):
    for ceil_mode in (False, True):
        cfg = dict(shape=(2, 3) + hw, kernel=(2, 2), stride=None, padding=(0, 0), dilation=(1, 1),
                   ceil_mode=ceil_mode)
        if min(hw) < 2 and not ceil_mode:
            continue
        for kind in ("normal", "ties", "nan"):
            x = _inputs(kind, cfg, dtype, np.random.default_rng(11))
            y, idx = ops.max_pool2d(x, 2, ceil_mode=ceil_mode)
            y_gpu, idx_gpu = ops.max_pool2d(cp.asarray(x), 2, ceil_mode=ceil_mode)
            _assert_same(idx_gpu, idx, f"indices, {kind}")
            _assert_same(y_gpu, y, f"y, {kind}")


def test_max_2x2_unaligned_input_takes_the_scalar_path(cp):
    """A view starting one element into its buffer is not 16-byte aligned."""
    x = random_array(np.random.default_rng(12), (2 * 3 * 8 * 16 + 1,), np.float32)
    x_gpu = cp.asarray(x)[1:].reshape(2, 3, 8, 16)
    y, idx = ops.max_pool2d(np.ascontiguousarray(x[1:].reshape(2, 3, 8, 16)), 2)
    y_gpu, idx_gpu = ops.max_pool2d(x_gpu, 2)
    _assert_same(idx_gpu, idx, "indices")
    _assert_same(y_gpu, y, "y")


def test_max_all_minus_infinity(cp):
    x = np.full((1, 2, 4, 5), -np.inf)
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    y_gpu, idx_gpu = ops.max_pool2d(cp.asarray(x), 3, 2, 1)
    _assert_same(idx_gpu, idx, "indices")
    _assert_same(y_gpu, y, "y")


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_indices_outside_their_window_fall_back_to_the_ordered_sum(cp, dtype):
    """Valid in-plane indices that no window of the geometry could produce: the GPU detects
    them and uses the ordered scatter, so the result still equals the CPU's."""
    rng = np.random.default_rng(13)
    x_shape = (2, 3, 9, 11)
    dy = random_array(rng, (2, 3, 4, 5), dtype)
    idx = np.ascontiguousarray(rng.integers(0, 9 * 11, size=dy.shape).astype(np.int64))
    dx = ops.max_pool2d_backward(dy, idx, x_shape, kernel_size=2)
    dx_gpu = ops.max_pool2d_backward(cp.asarray(dy), cp.asarray(idx), x_shape, kernel_size=2)
    _assert_same(dx_gpu, dx, "dx")


@pytest.mark.parametrize("geometry", (True, False))
@pytest.mark.parametrize("bad", (-1, 16, 10**12, -(2**63)))
@pytest.mark.parametrize("where", (0, 7, -1))
def test_max_backward_bad_index_raises_like_the_cpu(cp, bad, where, geometry):
    rng = np.random.default_rng(14)
    x = random_array(rng, (2, 3, 4, 4))
    _, idx = ops.max_pool2d(x, 2)
    idx = idx.copy()
    idx.reshape(-1)[where] = bad
    dy = random_array(rng, idx.shape)
    geo = dict(kernel_size=2) if geometry else {}
    with pytest.raises(ValueError) as cpu_error:
        ops.max_pool2d_backward(dy, idx, x.shape, **geo)
    with pytest.raises(ValueError) as gpu_error:
        ops.max_pool2d_backward(cp.asarray(dy), cp.asarray(idx), x.shape, **geo)
    assert str(gpu_error.value) == str(cpu_error.value)
    assert "outside the input plane [0, 16)" in str(gpu_error.value)
    # The device is still usable afterwards.
    _assert_same(ops.max_pool2d(cp.asarray(x), 2)[1], ops.max_pool2d(x, 2)[1], "after the error")


@pytest.mark.parametrize("count_include_pad", (True, False))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", AVG_CONFIGS)
def test_avg_forward_and_backward_match_cpu(cp, cfg, dtype, count_include_pad):
    rng = np.random.default_rng(15)
    x = random_array(rng, cfg["shape"], dtype)
    x_gpu = cp.asarray(x)
    for divisor in DIVISORS[1:] if count_include_pad else DIVISORS[:2]:
        geo = _avg_geo(cfg, divisor, count_include_pad)
        y = ops.avg_pool2d(x, **geo)
        y_gpu = ops.avg_pool2d(x_gpu, **geo)
        assert isinstance(y_gpu, cp.ndarray) and y_gpu.dtype == dtype
        assert_close(cp.asnumpy(y_gpu), y, *tol(dtype, 0.05), f"y, divisor_override={divisor}")
        dy = random_array(rng, y.shape, dtype)
        dx = ops.avg_pool2d_backward(dy, x.shape, **geo)
        dx_gpu = ops.avg_pool2d_backward(cp.asarray(dy), x.shape, **geo)
        assert_close(cp.asnumpy(dx_gpu), dx, *tol(dtype, 0.05), f"dx, divisor_override={divisor}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", BIG, ids=lambda c: str(c["shape"]))
def test_avg_and_sum_pool_on_larger_planes(cp, cfg, dtype):
    rng = np.random.default_rng(16)
    x = random_array(rng, cfg["shape"], dtype)
    geo = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
               ceil_mode=cfg["ceil_mode"])
    for forward, backward in ((ops.avg_pool2d, ops.avg_pool2d_backward),
                              (ops.sum_pool2d, ops.sum_pool2d_backward)):
        y = forward(x, **geo)
        assert_close(cp.asnumpy(forward(cp.asarray(x), **geo)), y, *tol(dtype, 0.05), forward.__name__)
        dy = random_array(rng, y.shape, dtype)
        assert_close(cp.asnumpy(backward(cp.asarray(dy), x.shape, **geo)),
                     backward(dy, x.shape, **geo), *tol(dtype, 0.05), backward.__name__)


def test_mixed_devices_are_refused(cp):
    x = random_array(np.random.default_rng(17), (1, 1, 4, 4))
    y, idx = ops.max_pool2d(x, 2)
    with pytest.raises(TypeError, match="same device"):
        ops.max_pool2d_backward(cp.asarray(y), idx, x.shape)


def test_autograd_max_and_avg_pool_gradients_match_cpu(cp):
    """nn.functional on GPU tensors: MaxPool2d's backward passes the geometry (the gather)."""
    import striate as st
    import striate.nn.functional as F

    x = random_array(np.random.default_rng(18), (2, 3, 9, 8))
    grads = []
    for device in ("cpu", "cuda"):
        t = st.tensor(x, device=device, requires_grad=True)
        y = F.max_pool2d(t, 3, 2, 1, ceil_mode=True) * 2.0
        (y.sum() + F.avg_pool2d(t, 2, 1, 1, count_include_pad=False).sum()).backward()
        grads.append(t.grad.numpy())
    assert_close(grads[1], grads[0], *tol(np.float64))
