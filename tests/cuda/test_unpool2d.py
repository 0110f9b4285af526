"""CPU <-> CUDA parity of max_unpool2d and its backward, and bad-index handling on the GPU.

Unpooling copies values, so results are compared exactly, including repeated indices
(the later input wins on both devices). An out-of-range index raises the CPU's ValueError
and never reaches memory: the forward writes y only after the check has read back clear.
Skips without a GPU; with STRIATE_REQUIRE_CUDA=1 a skip is a failure (conftest.py).
"""
import numpy as np
import pytest

import striate.ops as ops
from striate import _backend
from striate.ops._check import NO_BAD_INDEX
from tests.checks import DTYPES, random_array
from tests.ops.test_unpool2d import CONFIGS


def _geo(cfg):
    return dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                output_size=cfg["output_size"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_round_trip_and_backward_match_cpu_exactly(cp, cfg, dtype):
    rng = np.random.default_rng(30)
    x = random_array(rng, cfg["shape"], dtype)
    y, idx = ops.max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"])
    u = ops.max_unpool2d(y, idx, **_geo(cfg))
    u_gpu = ops.max_unpool2d(cp.asarray(y), cp.asarray(idx), **_geo(cfg))
    assert isinstance(u_gpu, cp.ndarray) and u_gpu.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(u_gpu), u)
    g = random_array(rng, u.shape, dtype)
    dy = ops.max_unpool2d_backward(g, idx)
    dy_gpu = ops.max_unpool2d_backward(cp.asarray(g), cp.asarray(idx))
    np.testing.assert_array_equal(cp.asnumpy(dy_gpu), dy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 3, 3), (2, 5, 17, 19), (1, 1, 1, 1), (1, 2, 40, 50)], ids=str)
def test_repeated_indices_the_later_input_wins(cp, shape, dtype):
    rng = np.random.default_rng(31)
    x = random_array(rng, shape, dtype)
    out_plane = (shape[2] + 1) * (shape[3] + 1)  # kernel 2, stride 1: the default output size
    idx = np.ascontiguousarray(rng.integers(0, min(out_plane, 5), size=shape).astype(np.int64))
    u = ops.max_unpool2d(x, idx, 2, 1)
    u_gpu = ops.max_unpool2d(cp.asarray(x), cp.asarray(idx), 2, 1)
    np.testing.assert_array_equal(cp.asnumpy(u_gpu), u)
    g = random_array(rng, u.shape, dtype)
    np.testing.assert_array_equal(cp.asnumpy(ops.max_unpool2d_backward(cp.asarray(g), cp.asarray(idx))),
                                  ops.max_unpool2d_backward(g, idx))


def _unpool_skipping_bad(x, idx, out_plane):
    """numpy loops: the later input wins, out-of-range indices are skipped."""
    x2, i2 = x.reshape(x.shape[0] * x.shape[1], -1), idx.reshape(idx.shape[0] * idx.shape[1], -1)
    y = np.zeros((x2.shape[0], out_plane), x.dtype)
    for p in range(x2.shape[0]):
        for i in range(x2.shape[1]):
            if 0 <= i2[p, i] < out_plane:
                y[p, i2[p, i]] = x2[p, i]
    return y.reshape(-1)


@pytest.mark.parametrize("bad", (-1, 16, 10**12, -(2**63)))
@pytest.mark.parametrize("where", (0, 7, -1))
def test_bad_index_raises_the_cpu_error(cp, bad, where):
    x = random_array(np.random.default_rng(32), (2, 3, 2, 2))
    _, idx = ops.max_pool2d(random_array(np.random.default_rng(33), (2, 3, 4, 4)), 2)
    idx = idx.copy()
    idx.reshape(-1)[where] = bad
    dy = np.zeros((2, 3, 4, 4))
    for call in (lambda m: ops.max_unpool2d(m(x), m(idx), 2),
                 lambda m: ops.max_unpool2d_backward(m(dy), m(idx))):
        with pytest.raises(ValueError) as cpu_error:
            call(np.asarray)
        with pytest.raises(ValueError) as gpu_error:
            call(cp.asarray)
        assert str(gpu_error.value) == str(cpu_error.value)
        assert "outside the output plane [0, 16)" in str(gpu_error.value)
    # The device is still usable afterwards.
    idx[...] = 0
    assert float(ops.max_unpool2d(cp.asarray(x), cp.asarray(idx), 2).sum()) == pytest.approx(
        float(ops.max_unpool2d(x, idx, 2).sum()))


@pytest.mark.parametrize("winner_dtype", ("int32", "int64"))
@pytest.mark.parametrize("position", (0, 7, -1))
def test_raw_kernels_never_touch_memory_outside_the_planes(cp, position, winner_dtype):
    """Raw bindings with one bad index: the winners pass flags it and writes only its
    workspace; the gather and the backward stay inside their planes (guard cells around
    each output keep their sentinel)."""
    cuda, stream = _backend._cuda, _backend.cuda_stream_ptr()
    rng = np.random.default_rng(34)
    N, C, H, W, Ho, Wo = 4, 16, 3, 3, 6, 6
    planes, in_plane, out_plane = N * C, H * W, Ho * Wo
    x = cp.asarray(random_array(rng, (N, C, H, W)))
    idx_host = np.ascontiguousarray(rng.integers(0, out_plane, size=(N, C, H, W)).astype(np.int64))
    flat_position = position % idx_host.size
    idx_host.reshape(-1)[position] = out_plane  # one past the plane
    idx = cp.asarray(idx_host)
    guard, sentinel = 64, 12345.0

    def guarded(n):
        buf = cp.full(n + 2 * guard, sentinel)
        return buf, buf[guard:guard + n]

    winner_buf = cp.full(planes * out_plane + 2 * guard, -7, dtype=winner_dtype)
    winner = winner_buf[guard:guard + planes * out_plane]
    flag = cp.full(1, NO_BAD_INDEX, dtype=cp.int64)
    cuda.max_unpool2d_winners(winner.data.ptr, flag.data.ptr, idx.data.ptr, winner_dtype, planes,
                              in_plane, out_plane, stream)
    assert int(flag[0]) == flat_position
    assert bool((winner_buf[:guard] == -7).all()) and bool((winner_buf[-guard:] == -7).all())
    y_buf, y = guarded(planes * out_plane)
    cuda.max_unpool2d_forward(y.data.ptr, x.data.ptr, winner.data.ptr, "float64", winner_dtype,
                              planes, in_plane, out_plane, stream)
    assert bool((y_buf[:guard] == sentinel).all()) and bool((y_buf[-guard:] == sentinel).all())
    np.testing.assert_array_equal(cp.asnumpy(y), _unpool_skipping_bad(cp.asnumpy(x), idx_host, out_plane))

    dx_buf, dx = guarded(planes * in_plane)
    flag[...] = NO_BAD_INDEX
    dy = cp.asarray(random_array(rng, (planes * out_plane,)))
    cuda.max_unpool2d_backward(dx.data.ptr, flag.data.ptr, dy.data.ptr, idx.data.ptr, "float64",
                               planes, in_plane, out_plane, stream)
    assert int(flag[0]) == flat_position
    assert bool((dx_buf[:guard] == sentinel).all()) and bool((dx_buf[-guard:] == sentinel).all())
    assert float(dx[flat_position]) == 0.0


def test_clear_flag_stays_clear(cp):
    """Every input names cell 0: no flag, and the forward gives cell 0 the later input."""
    cuda, stream = _backend._cuda, _backend.cuda_stream_ptr()
    idx = cp.zeros((2, 9), dtype=cp.int64)
    winner = cp.empty((2, 36), dtype=cp.int32)
    flag = cp.full(1, NO_BAD_INDEX, dtype=cp.int64)
    cuda.max_unpool2d_winners(winner.data.ptr, flag.data.ptr, idx.data.ptr, "int32", 2, 9, 36, stream)
    assert int(flag[0]) == NO_BAD_INDEX
    x = cp.arange(1.0, 19.0).reshape(2, 9)
    y = cp.full((2, 36), 7.0)
    cuda.max_unpool2d_forward(y.data.ptr, x.data.ptr, winner.data.ptr, "float64", "int32", 2, 9, 36,
                              stream)
    np.testing.assert_array_equal(cp.asnumpy(y[:, 0]), [9.0, 18.0])  # the later input wins
    assert bool((y[:, 1:] == 0).all())
