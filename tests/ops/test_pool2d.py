"""max_pool2d / avg_pool2d / sum_pool2d and their backward passes against the reference and PyTorch."""
from functools import partial

import numpy as np
import pytest

import striate.ops as ops
from tests import reference as ref
from tests.checks import (DTYPES, assert_adjoint, assert_close, numerical_grad, random_array,
                          sample_configs, tie_free, tol)


def _every_window_touches_the_plane(n, k, s, p, d, out):
    return all(any(0 <= o * s - p + a * d < n for a in range(k)) for o in range(out))


def _draw(rng, attempt, _, with_dilation, wide=False):
    kernel = tuple(int(v) for v in rng.integers(1, 5, size=2))
    stride = None if rng.random() < 0.25 else tuple(int(v) for v in rng.integers(1, 4, size=2))
    if attempt % 6 == 1:
        stride = (kernel[0] + 2, kernel[1] + 1)  # stride larger than the kernel
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    dilation = tuple(int(v) for v in rng.choice([1, 1, 2, 3], size=2)) if with_dilation else (1, 1)
    ceil_mode = bool(attempt % 2)
    H, W = (int(v) for v in rng.integers(1, 10, size=2))
    if wide:  # rows of more than a vector of windows wholly inside the plane (float32: 16)
        W = int(rng.integers(40, 90))
    elif attempt % 8 == 3:
        H = 1
    if attempt % 8 == 6 and not wide:
        W = 1
    s = kernel if stride is None else stride
    sizes = [ref.pool_output_size(n, k, st, p, d, ceil_mode)
             for n, k, st, p, d in zip((H, W), kernel, s, padding, dilation)]
    if min(sizes) < 1:
        return None
    # A dilated window can fall entirely into the padding; PyTorch then returns an index
    # outside the plane (and its backward writes out of bounds), so such geometries are only
    # used by test_max_window_entirely_in_padding.
    if not all(_every_window_touches_the_plane(n, k, st, p, d, o) for n, k, st, p, d, o in
               zip((H, W), kernel, s, padding, dilation, sizes)):
        return None
    cfg = dict(shape=(int(rng.integers(1, 3)), int(rng.integers(1, 4)), H, W), kernel=kernel,
               stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    return cfg, f"{cfg['shape']}-k{kernel}-s{stride}-p{padding}-d{dilation}-ceil{int(ceil_mode)}"


MAX_CONFIGS = (sample_configs(60, seed=30, draw=partial(_draw, with_dilation=True)) +
               sample_configs(12, seed=32, draw=partial(_draw, with_dilation=True, wide=True)))
AVG_CONFIGS = sample_configs(45, seed=31, draw=partial(_draw, with_dilation=False))
DIVISORS = (None, None, 1, 3, 7)


def _stride(cfg):
    return cfg["kernel"] if cfg["stride"] is None else cfg["stride"]


def _max(cfg, x):
    return ops.max_pool2d(x, cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], cfg["ceil_mode"])


def _max_ref(cfg, x):
    return ref.max_pool2d(x, cfg["kernel"], _stride(cfg), cfg["padding"], cfg["dilation"], cfg["ceil_mode"])


def _max_torch(torch, cfg, x):
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, cfg["kernel"], _stride(cfg), cfg["padding"],
                                            cfg["dilation"], cfg["ceil_mode"], return_indices=True)
    return xt, yt, it


def _inputs(kind, cfg, dtype, rng):
    shape = cfg["shape"]
    if kind == "normal":
        return random_array(rng, shape, dtype)
    if kind == "ties":  # small integers: almost every window has ties
        return np.ascontiguousarray(rng.integers(0, 3, size=shape).astype(dtype))
    if kind == "nan":  # NaNs (sometimes several per window) among ties
        x = rng.integers(-2, 2, size=shape).astype(dtype)
        x[rng.random(shape) < 0.25] = np.nan
        return np.ascontiguousarray(x)
    raise ValueError(kind)


# ------------------------------------------------------------------ max pool


@pytest.mark.parametrize("kind", ("normal", "ties", "nan"))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", MAX_CONFIGS)
def test_max_forward_matches_reference(cfg, dtype, kind):
    x = _inputs(kind, cfg, dtype, np.random.default_rng(0))
    y, idx = _max(cfg, x)
    assert y.dtype == x.dtype and idx.dtype == np.int64
    ry, ridx = _max_ref(cfg, x)
    np.testing.assert_array_equal(idx, ridx)
    assert_close(y, ry, 0, 0)


@pytest.mark.parametrize("kind", ("normal", "ties", "nan"))
@pytest.mark.parametrize("cfg", MAX_CONFIGS)
def test_max_forward_and_gradient_match_torch(cfg, kind, torch):
    rng = np.random.default_rng(1)
    x = _inputs(kind, cfg, np.float64, rng)
    xt, yt, it = _max_torch(torch, cfg, x)
    g = random_array(rng, tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    for dtype in DTYPES:
        y, idx = _max(cfg, x.astype(dtype))
        np.testing.assert_array_equal(idx, it.numpy())
        assert_close(y, yt.detach().numpy().astype(dtype), 0, 0)
        dx = ops.max_pool2d_backward(g.astype(dtype), idx, x.shape)
        assert dx.dtype == dtype
        assert_close(dx, xt.grad.numpy(), *tol(dtype))


@pytest.mark.parametrize("cfg", MAX_CONFIGS[:12])
def test_max_backward_numerical_gradient(cfg):
    rng = np.random.default_rng(2)
    x = tie_free(rng, cfg["shape"])
    y, idx = _max(cfg, x)
    g = random_array(rng, y.shape)
    expected = numerical_grad(lambda v: _max(cfg, v)[0], x, g, eps=1e-4)
    assert_close(ops.max_pool2d_backward(g, idx, x.shape), expected, 1e-8, 1e-7)


def test_max_all_minus_infinity_picks_first_in_plane_cell(torch):
    x = np.full((1, 2, 4, 5), -np.inf)
    y, idx = ops.max_pool2d(x, 3, 2, 1)
    _, it = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(idx, it.numpy())
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 3], [5, 6, 8]])


@pytest.mark.parametrize("H,k,s,p,d", [(1, 2, 2, 0, 1), (1, 4, 3, 1, 1), (6, 4, 6, 0, 2), (3, 3, 5, 1, 3)])
def test_ceil_mode_keeps_a_window_when_the_kernel_overhangs_the_input(H, k, s, p, d, torch):
    """PyTorch: out = floor_div(H + 2p - d(k-1) - 1 + (s-1), s) + 1 with flooring division, so a
    kernel that overhangs the padded input by less than a stride still yields one window."""
    assert ref.pool_output_size(H, k, s, p, d, True) == 1
    x = np.arange(H * 7, dtype=np.float64).reshape(1, 1, H, 7)
    yt, it = torch.nn.functional.max_pool2d(torch.tensor(x), (k, 1), (s, 1), (p, 0), (d, 1), True,
                                            return_indices=True)
    y, idx = ops.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), True)
    np.testing.assert_array_equal(idx, it.numpy())
    assert_close(y, yt.numpy(), 0, 0)
    if d == 1:
        at = torch.nn.functional.avg_pool2d(torch.tensor(x), (k, 1), (s, 1), (p, 0), True)
        assert_close(ops.avg_pool2d(x, (k, 1), (s, 1), (p, 0), True), at.numpy(), *tol(np.float64))


def test_max_window_entirely_in_padding_is_consistent():
    """Kernel 2, dilation 3, padding 1 on 2 rows: the first window reads rows -1 and 2, neither in
    the plane. Whatever max_pool2d returns for it, its own backward must accept the indices
    (or the forward must refuse the geometry with a ValueError)."""
    x = np.arange(32, dtype=np.float64).reshape(2, 1, 2, 8)
    try:
        y, idx = ops.max_pool2d(x, (2, 1), 1, (1, 0), (3, 1))
    except ValueError:
        return
    dx = ops.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    assert dx.shape == x.shape and np.all(np.isfinite(dx))


def test_max_padding_never_wins():
    x = np.full((1, 1, 3, 3), -5.0)
    y, idx = ops.max_pool2d(x, 3, 1, 1)
    assert np.all(y == -5.0) and np.all((0 <= idx) & (idx < 9))


def test_max_ties_go_to_the_first_cell_in_window_order():
    x = np.ones((1, 1, 4, 4), np.float32)
    _, idx = ops.max_pool2d(x, 2, 1)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1, 2], [4, 5, 6], [8, 9, 10]])


def test_max_nan_wins_and_the_last_nan_is_reported():
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    x[0, 0, 1, 1] = 7.0
    y, idx = ops.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 2


@pytest.mark.parametrize("cfg", MAX_CONFIGS[:12])
def test_max_backward_with_the_geometry_gives_the_same_gradient(cfg):
    """The optional geometry (used by the GPU's gather) is validated and changes nothing."""
    rng = np.random.default_rng(9)
    x = random_array(rng, cfg["shape"])
    y, idx = _max(cfg, x)
    g = random_array(rng, y.shape)
    geo = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
               dilation=cfg["dilation"], ceil_mode=cfg["ceil_mode"])
    assert_close(ops.max_pool2d_backward(g, idx, x.shape, **geo),
                 ops.max_pool2d_backward(g, idx, x.shape), 0, 0)


def test_max_backward_geometry_must_match_dy():
    x = np.zeros((1, 2, 6, 6))
    y, idx = ops.max_pool2d(x, 2)
    with pytest.raises(ValueError, match="dy must have shape"):
        ops.max_pool2d_backward(y, idx, x.shape, kernel_size=3)
    with pytest.raises(ValueError, match="need kernel_size"):
        ops.max_pool2d_backward(y, idx, x.shape, stride=2)


# ------------------------------------------------------------------ avg / sum pool


def _avg_args(cfg, divisor, count_include_pad):
    return dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
                ceil_mode=cfg["ceil_mode"], count_include_pad=count_include_pad,
                divisor_override=divisor)


@pytest.mark.parametrize("count_include_pad", (True, False))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", AVG_CONFIGS)
def test_avg_forward_matches_reference(cfg, dtype, count_include_pad):
    x = random_array(np.random.default_rng(3), cfg["shape"], dtype)
    for divisor in DIVISORS[1:] if count_include_pad else DIVISORS[:2]:
        y = ops.avg_pool2d(x, **_avg_args(cfg, divisor, count_include_pad))
        expected = ref.avg_pool2d(x, cfg["kernel"], _stride(cfg), cfg["padding"], cfg["ceil_mode"],
                                  count_include_pad, divisor)
        assert_close(y, expected, *tol(dtype, 4), f"divisor_override={divisor}")


@pytest.mark.parametrize("count_include_pad", (True, False))
@pytest.mark.parametrize("cfg", AVG_CONFIGS)
def test_avg_forward_and_gradient_match_torch(cfg, count_include_pad, torch):
    rng = np.random.default_rng(4)
    x = random_array(rng, cfg["shape"])
    for divisor in DIVISORS[:3] + (5,):
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.avg_pool2d(xt, cfg["kernel"], _stride(cfg), cfg["padding"],
                                            cfg["ceil_mode"], count_include_pad, divisor)
        g = random_array(rng, tuple(yt.shape))
        (yt * torch.tensor(g)).sum().backward()
        args = _avg_args(cfg, divisor, count_include_pad)
        for dtype in DTYPES:
            y = ops.avg_pool2d(x.astype(dtype), **args)
            assert_close(y, yt.detach().numpy(), *tol(dtype, 4), f"y, divisor_override={divisor}")
            dx = ops.avg_pool2d_backward(g.astype(dtype), x.shape, **args)
            assert dx.dtype == dtype
            assert_close(dx, xt.grad.numpy(), *tol(dtype, 4), f"dx, divisor_override={divisor}")


@pytest.mark.parametrize("count_include_pad", (True, False))
@pytest.mark.parametrize("cfg", AVG_CONFIGS[:15])
def test_avg_backward_is_the_adjoint(cfg, count_include_pad):
    rng = np.random.default_rng(5)
    x = random_array(rng, cfg["shape"])
    for divisor in (None, 3):
        args = _avg_args(cfg, divisor, count_include_pad)
        g = random_array(rng, ops.avg_pool2d(x, **args).shape)
        assert_adjoint(lambda v: ops.avg_pool2d(v, **args),
                       lambda v: ops.avg_pool2d_backward(v, x.shape, **args), x, g)


@pytest.mark.parametrize("cfg", AVG_CONFIGS[:6])
def test_avg_backward_numerical_gradient(cfg):
    rng = np.random.default_rng(6)
    x = random_array(rng, cfg["shape"])
    args = _avg_args(cfg, None, False)
    g = random_array(rng, ops.avg_pool2d(x, **args).shape)
    expected = numerical_grad(lambda v: ops.avg_pool2d(v, **args), x, g)
    assert_close(ops.avg_pool2d_backward(g, x.shape, **args), expected, 1e-8, 1e-7)


@pytest.mark.parametrize("cfg", AVG_CONFIGS[:15])
def test_sum_pool_is_avg_pool_with_divisor_one(cfg, torch):
    rng = np.random.default_rng(7)
    x = random_array(rng, cfg["shape"])
    geo = dict(kernel_size=cfg["kernel"], stride=cfg["stride"], padding=cfg["padding"],
               ceil_mode=cfg["ceil_mode"])
    y = ops.sum_pool2d(x, **geo)
    assert_close(y, ref.avg_pool2d(x, cfg["kernel"], _stride(cfg), cfg["padding"], cfg["ceil_mode"],
                                   True, 1), *tol(np.float64, 4))
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, cfg["kernel"], _stride(cfg), cfg["padding"],
                                        cfg["ceil_mode"], True, 1)
    g = random_array(rng, y.shape)
    (yt * torch.tensor(g)).sum().backward()
    assert_close(y, yt.detach().numpy(), *tol(np.float64, 4))
    dx = ops.sum_pool2d_backward(g, x.shape, **geo)
    assert_close(dx, xt.grad.numpy(), *tol(np.float64, 4))
    assert_adjoint(lambda v: ops.sum_pool2d(v, **geo), lambda v: ops.sum_pool2d_backward(v, x.shape, **geo),
                   x, g)


# The 2x2 / stride-2 / unpadded fast path (csrc/cpu/pool2d.cpp) with its border fallbacks.
FAST_2X2 = [(1, 1), (1, 6), (5, 1), (2, 2), (4, 6), (5, 7), (7, 4), (9, 33)]


@pytest.mark.parametrize("kind", ("normal", "ties", "nan"))
@pytest.mark.parametrize("ceil_mode", (False, True))
@pytest.mark.parametrize("hw", FAST_2X2, ids=str)
def test_max_2x2_fast_path(hw, ceil_mode, kind, torch):
    cfg = dict(shape=(2, 3) + hw, kernel=(2, 2), stride=None, padding=(0, 0), dilation=(1, 1),
               ceil_mode=ceil_mode)
    if min(ref.pool_output_size(n, 2, 2, 0, 1, ceil_mode) for n in hw) < 1:
        with pytest.raises(ValueError):
            _max(cfg, np.zeros(cfg["shape"]))
        return
    for dtype in DTYPES:
        x = _inputs(kind, cfg, dtype, np.random.default_rng(8))
        y, idx = _max(cfg, x)
        ry, ridx = _max_ref(cfg, x)
        np.testing.assert_array_equal(idx, ridx)
        assert_close(y, ry, 0, 0)
        _, _, it = _max_torch(torch, cfg, x.astype(np.float64))
        np.testing.assert_array_equal(idx, it.numpy())


def test_max_pool_backward_2x2_indices_outside_their_window():
    # An exactly tiled 2x2 pooling writes each window's four cells in one pass when its indices
    # lie in their own windows; indices elsewhere in the plane (shared cells add up) are scattered.
    rng = np.random.default_rng(3)
    g = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    own = np.stack(np.meshgrid(np.arange(4), np.arange(5), indexing="ij"), -1)
    idx = np.broadcast_to(own[..., 0] * 2 * 10 + own[..., 1] * 2, g.shape).astype(np.int64).copy()
    idx[1, 2, 0, 0] = 79  # another window's cell (the last one of the 8x10 plane)
    idx[0, 1, 3, 4] = 0
    expected = np.zeros((2, 3, 8, 10), np.float32)
    for n, c, i, j in np.ndindex(g.shape):
        expected[n, c].flat[idx[n, c, i, j]] += g[n, c, i, j]
    assert_close(ops.max_pool2d_backward(g, idx, (2, 3, 8, 10)), expected, 0, 0)


@pytest.mark.parametrize("divisor", (None, 3))
@pytest.mark.parametrize("shape", [(2, 33, 256, 258), (1, 17, 483, 520)])
def test_avg_backward_of_a_large_output(shape, divisor):
    """Outputs of 16 MB and more are built in cache and streamed out (csrc/cpu/stream.h): every
    value as numpy spreads it, unaligned rows (258 columns) and an uncovered last row (483)."""
    rng = np.random.default_rng(5)
    N, C, H, W = shape
    dy = random_array(rng, (N, C, H // 2, W // 2), np.float32)
    dx = ops.avg_pool2d_backward(dy, shape, 2, divisor_override=divisor)
    expected = np.zeros(shape, np.float32)
    spread = np.repeat(np.repeat(dy / np.float32(divisor or 4), 2, axis=2), 2, axis=3)
    expected[:, :, :spread.shape[2], :spread.shape[3]] = spread
    np.testing.assert_array_equal(dx, expected)
