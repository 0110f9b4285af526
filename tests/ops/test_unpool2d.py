"""max_unpool2d / max_unpool2d_backward: round trips with max_pool2d, PyTorch, bad indices."""
import numpy as np
import pytest

import striate
import striate.ops as ops
from striate import _cpu
from tests import reference as ref
from tests.checks import DTYPES, assert_adjoint, assert_close, random_array, sample_configs, tol


def _draw(rng, attempt, _):
    kernel = tuple(int(v) for v in rng.integers(1, 4, size=2))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2)) if attempt % 3 else None
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    H, W = (int(v) for v in rng.integers(1, 9, size=2))
    if attempt % 5 == 2:
        H = 1
    s = kernel if stride is None else stride
    pooled = [ref.pool_output_size(n, k, st, p, 1, False) for n, k, st, p in zip((H, W), kernel, s, padding)]
    if min(pooled) < 1:
        return None
    default = [(o - 1) * st - 2 * p + k for o, st, p, k in zip(pooled, s, padding, kernel)]
    if min(default) < 1:
        return None
    # Prefer the input size (the usual use); it must lie within one stride of the default.
    size = tuple(n if abs(n - d) < st else d for n, d, st in zip((H, W), default, s))
    x = np.arange(H * W, dtype=np.float64).reshape(1, 1, H, W)
    _, idx = ops.max_pool2d(x, kernel, stride, padding)
    if idx.max() >= size[0] * size[1]:
        return None  # those indices do not fit the unpooled plane: PyTorch refuses them too
    output_size = None if size == tuple(default) else size
    cfg = dict(shape=(int(rng.integers(1, 3)), int(rng.integers(1, 4)), H, W), kernel=kernel,
               stride=stride, padding=padding, output_size=output_size, out_hw=size)
    return cfg, f"{cfg['shape']}-k{kernel}-s{stride}-p{padding}-out{output_size}"


CONFIGS = sample_configs(36, seed=40, draw=_draw)


def _pool(cfg, x):
    return ops.max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"])


def _unpool(cfg, y, idx):
    return ops.max_unpool2d(y, idx, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["output_size"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_round_trip_matches_reference(cfg, dtype):
    x = random_array(np.random.default_rng(0), cfg["shape"], dtype)
    y, idx = _pool(cfg, x)
    u = _unpool(cfg, y, idx)
    assert u.dtype == dtype and u.shape == cfg["shape"][:2] + cfg["out_hw"]
    assert_close(u, ref.max_unpool2d(y, idx, cfg["out_hw"]), 0, 0)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_round_trip_and_gradient_match_torch(cfg, torch):
    rng = np.random.default_rng(1)
    x = random_array(rng, cfg["shape"])
    y, idx = _pool(cfg, x)
    s = cfg["kernel"] if cfg["stride"] is None else cfg["stride"]
    yt = torch.tensor(y, requires_grad=True)
    ut = torch.nn.functional.max_unpool2d(yt, torch.tensor(idx), cfg["kernel"], s, cfg["padding"],
                                          cfg["output_size"])
    g = random_array(rng, tuple(ut.shape))
    (ut * torch.tensor(g)).sum().backward()
    for dtype in DTYPES:
        u = _unpool(cfg, y.astype(dtype), idx)
        assert_close(u, ut.detach().numpy().astype(dtype), 0, 0)
        dy = ops.max_unpool2d_backward(g.astype(dtype), idx)
        assert dy.dtype == dtype and dy.shape == y.shape
        assert_close(dy, yt.grad.numpy(), *tol(dtype))


@pytest.mark.parametrize("cfg", [c for c in CONFIGS if c.values[0]["stride"] is None][:8])
def test_backward_is_the_adjoint(cfg):
    """Non-overlapping windows give distinct indices, so unpooling is linear with a gather adjoint."""
    rng = np.random.default_rng(2)
    y, idx = _pool(cfg, random_array(rng, cfg["shape"]))
    g = random_array(rng, _unpool(cfg, y, idx).shape)
    assert_adjoint(lambda v: _unpool(cfg, v, idx), lambda v: ops.max_unpool2d_backward(v, idx), y, g)


@pytest.mark.parametrize("threads", (1, 2))
def test_duplicate_indices_last_one_wins(threads):
    """csrc/cpu/unpool2d.cpp: when two inputs name the same cell the later one (flat order) wins."""
    striate.set_num_threads(threads)
    rng = np.random.default_rng(3)
    x = random_array(rng, (3, 4, 3, 3))
    idx = np.ascontiguousarray(rng.integers(0, 4, size=x.shape).astype(np.int64))  # many repeats
    u = ops.max_unpool2d(x, idx, 2, 1)  # default output 4x4
    assert_close(u, ref.max_unpool2d(x, idx, (4, 4)), 0, 0)


def test_output_size_may_be_a_full_shape():
    x = random_array(np.random.default_rng(4), (2, 3, 5, 7))
    y, idx = ops.max_pool2d(x, 2)
    a = ops.max_unpool2d(y, idx, 2, output_size=(5, 7))
    b = ops.max_unpool2d(y, idx, 2, output_size=(2, 3, 5, 7))
    assert a.shape == (2, 3, 5, 7)
    assert_close(a, b, 0, 0)


@pytest.mark.parametrize("bad", (-1, 16, 10**12, -(2**63)))
@pytest.mark.parametrize("where", ("first", "last"))
def test_out_of_range_index_raises(bad, where):
    x = random_array(np.random.default_rng(5), (2, 3, 2, 2))
    _, idx = ops.max_pool2d(random_array(np.random.default_rng(6), (2, 3, 4, 4)), 2)
    idx = idx.copy()
    idx.reshape(-1)[0 if where == "first" else -1] = bad
    with pytest.raises(ValueError, match="outside the output plane"):
        ops.max_unpool2d(x, idx, 2)
    with pytest.raises(ValueError, match="outside the output plane"):
        ops.max_unpool2d_backward(np.zeros((2, 3, 4, 4)), idx)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("position", (0, 7, -1))
def test_raw_binding_never_writes_a_plane_with_a_bad_index(position, threads):
    """The forward kernel checks each plane's indices before writing that plane: the plane
    holding the bad index stays untouched, nothing is written through it, and the first bad
    position is reported. (striate.ops allocates y and dx itself and drops them on error.)"""
    striate.set_num_threads(threads)
    rng = np.random.default_rng(7)
    x = random_array(rng, (4, 16, 3, 3))
    idx = np.ascontiguousarray(rng.integers(0, 36, size=x.shape).astype(np.int64))
    flat = position % idx.size
    idx.reshape(-1)[flat] = 36  # one past the 6x6 output plane
    if flat != idx.size - 1:
        idx.reshape(-1)[-1] = -1  # a second, later bad index, in the last plane
    y = np.full((4, 16, 6, 6), 12345.0)
    with pytest.raises(ValueError, match=rf"indices.flat\[{flat}\] = 36 is outside the output plane"):
        _cpu.max_unpool2d_forward(y, x, idx)
    plane = flat // 9
    assert np.all(y.reshape(64, 36)[plane] == 12345.0)
    assert np.all(y.reshape(64, 36)[-1] == 12345.0)
    with pytest.raises(ValueError, match="outside the output plane"):
        _cpu.max_unpool2d_backward(np.empty(x.shape), np.zeros((4, 16, 6, 6)), idx)


def test_output_size_outside_one_stride_raises():
    x = random_array(np.random.default_rng(8), (1, 1, 3, 3))
    idx = np.zeros(x.shape, np.int64)
    with pytest.raises(ValueError, match="output_size"):
        ops.max_unpool2d(x, idx, 2, output_size=(8, 6))


def test_forward_of_a_large_output():
    """Outputs of 16 MB and more are built plane by plane in cache and streamed out
    (csrc/cpu/stream.h): the scatter of numpy, zeros elsewhere."""
    rng = np.random.default_rng(3)
    x = random_array(rng, (4, 65, 130, 126), np.float32)
    y, idx = ops.max_pool2d(x, 2)
    u = ops.max_unpool2d(y, idx, 2, output_size=x.shape[2:])
    expected = np.zeros((4 * 65, 130 * 126), np.float32)
    np.put_along_axis(expected, idx.reshape(4 * 65, -1), y.reshape(4 * 65, -1), axis=1)
    np.testing.assert_array_equal(u, expected.reshape(x.shape))
