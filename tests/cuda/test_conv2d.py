"""CPU <-> CUDA parity of conv2d and conv_transpose2d, forward and all three gradients.

The reference is striate's CPU kernel in float64 on the same (rounded) inputs. A GPU result
must lie within rel * S of it, where S is the same op applied to |x|, |w|, |b| (|dy|): the sum
of the magnitudes of the terms behind each output element, which bounds every
summation-order difference. rel is 1e-11 in float64 (a missing or extra tap would be off by
about S / terms) and 1e-5 in float32 (float32 rounding of the products and sums).

GPU tests skip without a usable GPU (tests/cuda/conftest.py; STRIATE_REQUIRE_CUDA=1 turns the
skip into a failure). The tests of the host-side checks at the end need only a build with
striate._cuda, no GPU.
"""
import os

import numpy as np
import pytest

import striate.ops as ops
from striate import _backend
from tests.checks import DTYPES, sample_configs
from tests.ops.test_conv2d import PADDING_MODES
from tests.ops.test_conv2d import draw_geometry as conv_geometry
from tests.ops.test_conv_transpose2d import draw_geometry as convt_geometry

REL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-11}


def _assert_parity(got, ref, bound, what):
    """got (a CuPy array) == ref within REL[dtype] * bound, element by element."""
    import cupy

    assert isinstance(got, cupy.ndarray), f"{what}: expected a CuPy array, got {type(got).__name__}"
    rel = REL[np.dtype(got.dtype)]
    a = cupy.asnumpy(got).astype(np.float64)
    assert a.shape == ref.shape, f"{what}: shape {a.shape} != {ref.shape}"
    err = np.abs(a - ref)
    limit = rel * bound + 1e-300
    bad = ~(err <= limit)  # NaN counts as bad
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what} ({got.dtype}): {int(bad.sum())} of {a.size} elements differ; "
                             f"first at {i}: got {a[i]!r}, expected {ref[i]!r} "
                             f"(bound {limit[i]:.3g})")


def _draw_inputs(shapes, dtype, seed):
    """Arrays of the given shapes (None stays None) rounded to dtype."""
    rng = np.random.default_rng(seed)
    return [None if s is None else rng.standard_normal(s).astype(dtype) for s in shapes]


def _f64(a):
    return None if a is None else a.astype(np.float64)


def _abs64(a):
    return None if a is None else np.abs(a).astype(np.float64)


def _gpu(cp, a):
    return None if a is None else cp.asarray(a)


def _check_op(cp, forward, backward, geo, x, w, b, seed):
    """forward / backward on the GPU against the CPU float64 results and bounds."""
    x64, w64, b64 = _f64(x), _f64(w), _f64(b)
    y_ref = forward(x64, w64, b64, **geo)
    y_bound = forward(_abs64(x), _abs64(w), _abs64(b), **geo)
    xg, wg, bg = _gpu(cp, x), _gpu(cp, w), _gpu(cp, b)
    _assert_parity(forward(xg, wg, bg, **geo), y_ref, y_bound, "y")

    (dy,) = _draw_inputs([y_ref.shape], x.dtype, seed)
    refs = backward(_f64(dy), x64, w64, **geo)
    bounds = backward(_abs64(dy), _abs64(x), _abs64(w), **geo)
    got = backward(cp.asarray(dy), xg, wg, **geo)
    for name, g, r, s in zip(("dx", "dw", "db"), got, refs, bounds):
        _assert_parity(g, r, s, name)


# ------------------------------------------------------------------------ conv2d


def _conv_draw(rng, attempt, i):
    groups = int(rng.choice([1, 1, 2, 3]))
    Cg = int(rng.choice([1, 2, 3, 5, 8, 17, 40]))
    Kg = int(rng.choice([1, 3, 8, 33, 40, 70]))
    kh, kw = (int(v) for v in rng.choice([1, 2, 3, 5], size=2))
    stride, dilation, padding = conv_geometry(rng, i, kh, kw)
    H, W = (int(v) for v in rng.integers(1, 20, size=2))
    if attempt % 9 == 4:
        H = 1
    cfg = dict(x=(int(rng.integers(1, 5)), Cg * groups, H, W), w=(Kg * groups, Cg, kh, kw),
               bias=bool(rng.random() < 0.6),
               geo=dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                        padding_mode=PADDING_MODES[i % 4]))
    try:  # keep only geometries the op accepts
        ops.conv2d(np.zeros(cfg["x"]), np.zeros(cfg["w"]), **cfg["geo"])
    except ValueError:
        return None
    g = cfg["geo"]
    return cfg, (f"{g['padding_mode']}-x{cfg['x']}-w{cfg['w']}-s{stride}-p{padding}-d{dilation}"
                 f"-g{groups}").replace(" ", "")


CONV_CONFIGS = sample_configs(40, 31, _conv_draw)

# Shapes that reach each tile (narrow M <= 32, medium, large fp32 with >= 128 tiles), the
# split reduction of the weight gradient, stride phases without taps (stride 2, dilation 2),
# and more GEMMs (groups * stride phases = 65536) than one grid's z extent.
# (x shape, w shape, stride, padding, dilation, groups)
CONV_SHAPES = [
    ((4, 16, 64, 64), (128, 16, 3, 3), 1, 1, 1, 1),           # large forward, split dw
    ((4, 128, 64, 64), (16, 128, 3, 3), 1, 1, 1, 1),          # large backward data
    ((2, 96, 33, 35), (72, 96, 3, 3), 2, 1, 1, 1),            # medium, stride-2 phases
    ((2, 130, 20, 20), (40, 65, 1, 1), 1, 0, 1, 2),           # pointwise, grouped, Cg > 64
    ((3, 8, 30, 30), (8, 8, 5, 5), 3, 2, 2, 1),               # stride 3 with dilation 2
    ((2, 12, 17, 19), (24, 6, 4, 2), 2, (1, 0), 2, 2),        # phases that no tap reaches
    ((32, 3, 40, 40), (64, 3, 7, 7), 2, 3, 1, 1),             # stem-like 7x7 stride 2
    ((1, 1024, 16, 16), (1024, 1, 1, 1), 8, 0, 1, 1024),      # 65536 backward-data GEMMs
    ((1, 2, 1, 1), (3, 2, 3, 3), 1, 1, 1, 1),                 # one-pixel planes
]


def _shape_id(case):
    return f"x{case[0]}-w{case[1]}-s{case[2]}-p{case[3]}-d{case[4]}-g{case[5]}".replace(" ", "")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONV_CONFIGS)
def test_conv2d_random_configs_match_cpu(cp, cfg, dtype):
    x, w, b = _draw_inputs([cfg["x"], cfg["w"], (cfg["w"][0],) if cfg["bias"] else None], dtype, 1)
    _check_op(cp, ops.conv2d, ops.conv2d_backward, cfg["geo"], x, w, b, seed=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_SHAPES, ids=[_shape_id(c) for c in CONV_SHAPES])
def test_conv2d_tiles_and_splits_match_cpu(cp, case, dtype):
    xs, ws, stride, padding, dilation, groups = case
    x, w, b = _draw_inputs([xs, ws, (ws[0],)], dtype, 3)
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check_op(cp, ops.conv2d, ops.conv2d_backward, geo, x, w, b, seed=4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_is_deterministic(cp, dtype):
    """Same inputs, same bits: the split weight-gradient reduction has a fixed order."""
    x, w, dy = _draw_inputs([(4, 16, 40, 40), (32, 16, 3, 3), (4, 32, 40, 40)], dtype, 5)
    x, w, dy = cp.asarray(x), cp.asarray(w), cp.asarray(dy)
    sizes = (4, 16, 40, 40, 32, 3, 3, 40, 40, 1, 1, 1, 1, 1, 1, 1)
    assert _backend._cuda.conv2d_backward_workspace(np.dtype(dtype).name, *sizes) > 0  # split
    first = (ops.conv2d(x, w, padding=1),) + ops.conv2d_backward(dy, x, w, padding=1)
    for _ in range(2):
        again = (ops.conv2d(x, w, padding=1),) + ops.conv2d_backward(dy, x, w, padding=1)
        for a, b in zip(first, again):
            assert cp.array_equal(a, b)


def test_conv2d_needs_selects_outputs(cp):
    x, w, dy = _draw_inputs([(2, 6, 9, 8), (4, 3, 3, 3), (2, 4, 9, 8)], np.float64, 6)
    x, w, dy = cp.asarray(x), cp.asarray(w), cp.asarray(dy)
    geo = dict(padding=1, groups=2)
    full = ops.conv2d_backward(dy, x, w, **geo)
    for needs in ((True, False, False), (False, True, False), (False, False, True)):
        part = ops.conv2d_backward(dy, x, w, **geo, needs=needs)
        for want, got, exp in zip(needs, part, full):
            if want:
                assert cp.array_equal(got, exp)
            else:
                assert got is None


def test_conv2d_rejects_mixed_devices(cp):
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(TypeError, match="same device"):
        ops.conv2d(cp.asarray(x), np.zeros((3, 2, 3, 3)))


# -------------------------------------------------------------- conv_transpose2d


def _convt_draw(rng, attempt, _):
    groups = int(rng.choice([1, 1, 2, 3]))
    Cing = int(rng.choice([1, 2, 3, 9, 40]))
    Coutg = int(rng.choice([1, 2, 3, 20, 70]))
    kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
    stride, padding, dilation, output_padding = convt_geometry(rng, attempt, kh, kw)
    H, W = (int(v) for v in rng.integers(1, 12, size=2))
    if attempt % 7 == 3:
        W = 1
    cfg = dict(x=(int(rng.integers(1, 4)), Cing * groups, H, W), w=(Cing * groups, Coutg, kh, kw),
               bias=bool(rng.random() < 0.6),
               geo=dict(stride=stride, padding=padding, output_padding=output_padding,
                        groups=groups, dilation=dilation))
    try:
        ops.conv_transpose2d(np.zeros(cfg["x"]), np.zeros(cfg["w"]), **cfg["geo"])
    except ValueError:
        return None
    return cfg, (f"x{cfg['x']}-w{cfg['w']}-s{stride}-p{padding}-op{output_padding}-d{dilation}"
                 f"-g{groups}").replace(" ", "")


CONVT_CONFIGS = sample_configs(30, 32, _convt_draw)

# (x shape, w shape, stride, padding, output_padding, dilation, groups)
CONVT_SHAPES = [
    ((4, 64, 16, 16), (64, 96, 4, 4), 2, 1, 0, 1, 1),         # DCGAN-like upsampling
    ((2, 100, 1, 1), (100, 80, 4, 4), 1, 0, 0, 1, 1),         # latent vector to 4x4
    ((3, 8, 20, 24), (8, 4, 3, 3), 3, 1, 2, 1, 2),            # stride 3, output_padding
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONVT_CONFIGS)
def test_conv_transpose2d_random_configs_match_cpu(cp, cfg, dtype):
    out_channels = cfg["w"][1] * cfg["geo"]["groups"]
    x, w, b = _draw_inputs([cfg["x"], cfg["w"], (out_channels,) if cfg["bias"] else None], dtype, 7)
    _check_op(cp, ops.conv_transpose2d, ops.conv_transpose2d_backward, cfg["geo"], x, w, b, seed=8)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONVT_SHAPES, ids=[str(i) for i in range(len(CONVT_SHAPES))])
def test_conv_transpose2d_shapes_match_cpu(cp, case, dtype):
    xs, ws, stride, padding, output_padding, dilation, groups = case
    x, w, b = _draw_inputs([xs, ws, (ws[1] * groups,)], dtype, 9)
    geo = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
               dilation=dilation)
    _check_op(cp, ops.conv_transpose2d, ops.conv_transpose2d_backward, geo, x, w, b, seed=10)


# ---------------------------------------------------------- TF32 tensor cores


@pytest.fixture
def tf32(cp):
    """striate.cuda.allow_tf32 = True for the test; True when the GPU has TF32 (sm_80+)."""
    import striate.cuda

    striate.cuda.allow_tf32 = True
    yield int(cp.cuda.Device().compute_capability) >= 80
    striate.cuda.allow_tf32 = False


# (x shape, w shape, stride, padding, groups): the narrow, large and medium tiles.
TF32_SHAPES = [
    ((2, 16, 20, 20), (24, 16, 3, 3), 1, 1, 1),
    ((4, 16, 64, 64), (128, 16, 3, 3), 1, 1, 1),
    ((2, 96, 33, 35), (72, 96, 3, 3), 2, 1, 1),
    ((2, 12, 17, 19), (24, 6, 4, 2), 2, (1, 0), 2),
]


@pytest.mark.parametrize("case", TF32_SHAPES, ids=[str(i) for i in range(len(TF32_SHAPES))])
def test_conv2d_tf32_within_tf32_rounding(cp, tf32, case):
    """TF32 rounds each input to a 10-bit mantissa: products within 2^-10 relative, fp32 sums."""
    xs, ws, stride, padding, groups = case
    geo = dict(stride=stride, padding=padding, groups=groups)
    x, w, b = _draw_inputs([xs, ws, (ws[0],)], np.float32, 11)
    x64, w64, b64 = _f64(x), _f64(w), _f64(b)
    xg, wg, bg = cp.asarray(x), cp.asarray(w), cp.asarray(b)
    y = ops.conv2d(xg, wg, bg, **geo)
    y_ref = ops.conv2d(x64, w64, b64, **geo)
    bound = ops.conv2d(np.abs(x64), np.abs(w64), np.abs(b64), **geo)
    err = np.abs(cp.asnumpy(y).astype(np.float64) - y_ref)
    assert (err <= 2e-3 * bound).all(), f"y: max error / bound {np.max(err / bound):.3g}"
    (dy,) = _draw_inputs([y_ref.shape], np.float32, 12)
    got = ops.conv2d_backward(cp.asarray(dy), xg, wg, **geo)
    refs = ops.conv2d_backward(_f64(dy), x64, w64, **geo)
    bounds = ops.conv2d_backward(np.abs(_f64(dy)), np.abs(x64), np.abs(w64), **geo)
    for name, g, r, s in zip(("dx", "dw", "db"), got, refs, bounds):
        err = np.abs(cp.asnumpy(g).astype(np.float64) - r)
        assert (err <= 2e-3 * s + 1e-300).all(), f"{name}: max error / bound {np.max(err / s):.3g}"
    import striate.cuda

    striate.cuda.allow_tf32 = False
    y_fp32 = ops.conv2d(xg, wg, bg, **geo)
    if tf32:  # the flag really switched kernels: TF32 rounding changes the bits
        assert not cp.array_equal(y, y_fp32)
    else:  # before sm_80 the flag is ignored
        assert cp.array_equal(y, y_fp32)


def test_tf32_flag_does_not_change_float64(cp, tf32):
    x, w = _draw_inputs([(2, 8, 9, 10), (8, 5, 3, 3)], np.float64, 13)
    geo = dict(stride=2, padding=1, output_padding=1)
    y_on = ops.conv_transpose2d(cp.asarray(x), cp.asarray(w), **geo)
    import striate.cuda

    striate.cuda.allow_tf32 = False
    y_off = ops.conv_transpose2d(cp.asarray(x), cp.asarray(w), **geo)
    assert cp.array_equal(y_on, y_off)  # float64 never uses TF32


# ------------------------------------------ host-side checks (a CUDA build, no GPU needed)


@pytest.fixture
def cuda_module():
    if not _backend.cuda_built():
        if os.environ.get("STRIATE_REQUIRE_CUDA") == "1":
            pytest.fail("STRIATE_REQUIRE_CUDA=1 but striate was built without CUDA", pytrace=False)
        pytest.skip("striate was built without CUDA (no striate._cuda)")
    return _backend._cuda


def _sizes(N=2, C=4, H=8, W=8, K=6, kh=3, kw=3, Ho=8, Wo=8, sh=1, sw=1, pt=1, pl=1, dh=1, dw=1,
           groups=1):
    return (N, C, H, W, K, kh, kw, Ho, Wo, sh, sw, pt, pl, dh, dw, groups)


def test_workspace_only_for_split_reductions(cuda_module):
    small = cuda_module.conv2d_backward_workspace("float32", *_sizes(N=1, H=4, W=4, Ho=4, Wo=4))
    assert small == 0  # 16 reduction elements: one chunk, dw written directly
    big = cuda_module.conv2d_backward_workspace("float32", *_sizes(N=8, H=64, W=64, Ho=64, Wo=64))
    assert big > 0 and big % (6 * 4 * 3 * 3) == 0  # whole partial weight gradients
    same = cuda_module.conv_transpose2d_backward_workspace(
        "float32", 8, 6, 64, 64, 4, 3, 3, 64, 64, 1, 1, 1, 1, 1, 1, 1)
    assert same == big  # the transposed convolution runs the same weight-gradient GEMM


def test_bindings_reject_bad_arguments(cuda_module):
    with pytest.raises(ValueError, match="divisible by groups"):
        cuda_module.conv2d_backward_workspace("float32", *_sizes(groups=4, K=6))
    with pytest.raises(ValueError, match=r"stride must be in \[1, 2147483647\], got 0"):
        cuda_module.conv2d_backward_workspace("float64", *_sizes(sh=0))
    with pytest.raises(ValueError, match=r"dilation must be in \[1, 2147483647\], got 4611686018427387904"):
        cuda_module.conv2d_backward_workspace("float64", *_sizes(dh=2**62))
    with pytest.raises(TypeError, match="float32 or float64"):
        cuda_module.conv2d_backward_workspace("float16", *_sizes())
    with pytest.raises(ValueError, match="device pointer"):
        cuda_module.conv2d_forward(0, 0, 0, 0, "float32", *_sizes(), False, 0)
    # Sizes past the 32-bit GEMM indices are refused before anything is launched.
    with pytest.raises(ValueError, match="2\\^31"):
        cuda_module.conv2d_forward(1, 1, 1, 0, "float32",
                                   *_sizes(N=1 << 16, H=1 << 8, W=1 << 8, Ho=1 << 8, Wo=1 << 8),
                                   False, 0)
    with pytest.raises(ValueError, match="workspace"):
        cuda_module.conv2d_backward(0, 8, 0, 8, 8, 8, "float32",
                                    *_sizes(N=8, H=64, W=64, Ho=64, Wo=64), 0, 0, False, 0)
