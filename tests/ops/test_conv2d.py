"""conv2d / conv2d_backward against the numpy reference, torch.nn.Conv2d and the plain kernel."""
import numpy as np
import pytest

import striate
import striate.ops as ops
from tests import reference as ref
from tests.checks import (DTYPES, assert_close, assert_conv_matches, assert_conv_numerical_gradients,
                          assert_needs_selects_outputs, conv_arrays, random_array, sample_configs, tol)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

# PyTorch's own performance note for asymmetric 'same' padding, not a problem of ours.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


def _sides(padding, kernel, dilation):
    """(top, bottom, left, right) for an int / pair / "same" / "valid" padding argument."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = (d * (k - 1) for d, k in zip(dilation, kernel))
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    return (ph, ph, pw, pw)


def _valid(cfg):
    N, C, H, W = cfg["x"]
    K, Cg, kh, kw = cfg["w"]
    top, bottom, left, right = _sides(cfg["padding"], (kh, kw), cfg["dilation"])
    mode = cfg["padding_mode"]
    if mode == "reflect" and (max(top, bottom) >= H or max(left, right) >= W):
        return False
    if mode == "circular" and (max(top, bottom) > H or max(left, right) > W):
        return False
    eff_h = cfg["dilation"][0] * (kh - 1) + 1
    eff_w = cfg["dilation"][1] * (kw - 1) + 1
    return H + top + bottom >= eff_h and W + left + right >= eff_w


def draw_geometry(rng, i, kh, kw):
    """(stride, dilation, padding) of the i-th accepted config with a kh x kw kernel
    (shared with tests/cuda/test_conv2d.py)."""
    stride = tuple(int(v) for v in rng.integers(1, 4, size=2))
    if i % 7 == 3:
        stride = (kh + 1, kw + 2)  # stride larger than the kernel
    dilation = tuple(int(v) for v in rng.choice([1, 1, 2, 3], size=2))
    padding = [0, 1, 2, (int(rng.integers(0, 3)), int(rng.integers(0, 3))), "same", "valid"][i % 6]
    if padding == "same":
        stride = (1, 1)
    return stride, dilation, padding


def _draw(rng, attempt, i):
    groups = int(rng.choice([1, 1, 2, 3]))
    Cg, Kg = (int(v) for v in rng.integers(1, 4, size=2))
    kh, kw = (int(v) for v in rng.choice([1, 2, 3, 5], size=2))
    stride, dilation, padding = draw_geometry(rng, i, kh, kw)
    H, W = (int(v) for v in rng.integers(1, 10, size=2))
    if attempt % 9 == 4:
        H = 1
    cfg = dict(x=(int(rng.integers(1, 4)), Cg * groups, H, W), w=(Kg * groups, Cg, kh, kw),
               bias=bool(rng.random() < 0.6), stride=stride, padding=padding,
               dilation=dilation, groups=groups, padding_mode=PADDING_MODES[i % 4])
    if not _valid(cfg):
        return None
    return cfg, f"{cfg['padding_mode']}-x{cfg['x']}-w{cfg['w']}-s{stride}-p{padding}-d{dilation}-g{groups}"


CONFIGS = sample_configs(60, seed=10, draw=_draw, max_attempts=20)


def _arrays(cfg, dtype, seed):
    return conv_arrays(cfg, cfg["w"][0], dtype, seed)


def _geometry(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"],
                groups=cfg["groups"], padding_mode=cfg["padding_mode"])


def _reference(cfg, x, w, b):
    top, bottom, left, right = _sides(cfg["padding"], cfg["w"][2:], cfg["dilation"])
    if cfg["padding_mode"] == "zeros":
        return ref.conv2d(x, w, b, cfg["stride"], (top, bottom, left, right), cfg["dilation"],
                          cfg["groups"])
    xp = ref.pad2d(x, (left, right, top, bottom), cfg["padding_mode"])
    return ref.conv2d(xp, w, b, cfg["stride"], (0, 0, 0, 0), cfg["dilation"], cfg["groups"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS)
def test_forward_matches_reference(cfg, dtype):
    x, w, b = _arrays(cfg, dtype, 0)
    y = ops.conv2d(x, w, b, **_geometry(cfg))
    assert y.dtype == x.dtype
    assert_close(y, _reference(cfg, x, w, b), *tol(dtype, 10))


@pytest.mark.parametrize("cfg", CONFIGS)
def test_forward_and_gradients_match_torch(cfg, torch):
    x, w, b = _arrays(cfg, np.float64, 1)
    K, Cg, kh, kw = cfg["w"]
    conv = torch.nn.Conv2d(cfg["x"][1], K, (kh, kw), stride=cfg["stride"], padding=cfg["padding"],
                           dilation=cfg["dilation"], groups=cfg["groups"], bias=cfg["bias"],
                           padding_mode=cfg["padding_mode"], dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(w))
        if b is not None:
            conv.bias.copy_(torch.tensor(b))
    xt = torch.tensor(x, requires_grad=True)
    yt = conv(xt)
    g = random_array(np.random.default_rng(2), tuple(yt.shape))
    (yt * torch.tensor(g)).sum().backward()
    expected = dict(y=yt.detach().numpy(), dx=xt.grad.numpy(), dw=conv.weight.grad.numpy(),
                    db=None if b is None else conv.bias.grad.numpy())
    assert_conv_matches(ops.conv2d, ops.conv2d_backward, _geometry(cfg), x, w, b, g, expected)


NUMERIC = [c for c in CONFIGS if np.prod(c.values[0]["x"]) <= 80][:10]


@pytest.mark.parametrize("cfg", NUMERIC)
def test_backward_numerical_gradient(cfg):
    x, w, b = _arrays(cfg, np.float64, 3)
    assert_conv_numerical_gradients(ops.conv2d, ops.conv2d_backward, _geometry(cfg), x, w, b, seed=4)


def test_needs_selects_outputs():
    cfg = CONFIGS[0].values[0]
    x, w, _ = _arrays(cfg, np.float64, 5)
    assert_needs_selects_outputs(ops.conv2d, ops.conv2d_backward, _geometry(cfg), x, w)


# The fast path (im2col + blocked GEMM, pointwise shortcut, image- or GEMM-level threading)
# against the plain loop nest in csrc/cpu/conv2d.cpp.
FAST = [
    # x shape, w shape, stride, padding, dilation, groups
    ((1, 3, 8, 9), (4, 3, 3, 3), 1, 1, 1, 1),
    ((3, 4, 7, 7), (6, 4, 1, 1), 1, 0, 1, 1),            # pointwise, no im2col
    ((2, 6, 5, 6), (4, 3, 1, 1), 1, 0, 1, 2),            # pointwise, grouped
    ((3, 4, 9, 11), (8, 4, 1, 1), 2, 0, 1, 1),           # 1x1 strided: im2col
    ((2, 8, 12, 10), (8, 2, 3, 3), (2, 1), (1, 2), (1, 2), 4),
    ((1, 5, 6, 7), (7, 5, 2, 4), 1, "same", (2, 1), 1),
    ((4, 2, 13, 5), (3, 2, 5, 3), (3, 2), 2, 1, 1),
    ((2, 3, 4, 4), (5, 3, 3, 3), 5, 1, 1, 1),             # stride > kernel
    ((1, 32, 40, 41), (80, 32, 3, 3), 1, 1, 1, 1),       # depth > KC, M > MC, P > NC
    ((3, 12, 20, 20), (76, 12, 3, 3), 1, 0, 1, 1),       # images over threads, M > MC
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", FAST, ids=[f"x{c[0]}-w{c[1]}".replace(" ", "") for c in FAST])
def test_fast_path_matches_plain_kernel(case, dtype, threads):
    striate.set_num_threads(threads)
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(6)
    x, w = random_array(rng, xs, dtype), random_array(rng, ws, dtype)
    b = random_array(rng, (ws[0],), dtype)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    fast = ops.conv2d(x, w, b, **kwargs)
    plain = ops.conv2d_reference(x, w, b, **kwargs)
    assert_close(fast, plain, *tol(dtype, 10))


@pytest.mark.parametrize("threads", (1, 2))
def test_large_backward_matches_torch(threads, torch):
    """Backward passes through the blocked GEMM on shapes beyond its block sizes."""
    striate.set_num_threads(threads)
    rng = np.random.default_rng(7)
    for xs, ws, pad in (((1, 32, 40, 41), (80, 32, 3, 3), 1), ((3, 12, 20, 20), (76, 12, 3, 3), 0)):
        x, w = random_array(rng, xs, np.float32), random_array(rng, ws, np.float32)
        xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        yt = torch.nn.functional.conv2d(xt, wt, padding=pad)
        g = random_array(rng, tuple(yt.shape), np.float32)
        (yt * torch.tensor(g, dtype=torch.float64)).sum().backward()
        dx, dw, db = ops.conv2d_backward(g, x, w, padding=pad)
        assert_close(dx, xt.grad.numpy(), *tol(np.float32, 50), "dx")
        assert_close(dw, wt.grad.numpy(), *tol(np.float32, 50), "dw")
        assert_close(db, g.astype(np.float64).sum(axis=(0, 2, 3)), *tol(np.float32, 50), "db")


def test_thread_count_does_not_change_results():
    rng = np.random.default_rng(8)
    x, w = random_array(rng, (4, 6, 11, 9), np.float64), random_array(rng, (6, 3, 3, 3), np.float64)
    results = []
    for threads in (1, 2):
        striate.set_num_threads(threads)
        y = ops.conv2d(x, w, padding=1, groups=2)
        results.append((y,) + ops.conv2d_backward(np.ones_like(y), x, w, padding=1, groups=2))
    for a, b in zip(*results):
        assert_close(a, b, *tol(np.float64, 10))


def test_one_pixel_planes():
    rng = np.random.default_rng(9)
    x = random_array(rng, (2, 3, 1, 1))
    w = random_array(rng, (4, 3, 1, 1))
    y = ops.conv2d(x, w)
    assert_close(y, ref.conv2d(x, w), *tol(np.float64))
    y = ops.conv2d(x, random_array(rng, (4, 3, 3, 3)), padding=1, padding_mode="circular")
    assert y.shape == (2, 4, 1, 1)


@pytest.mark.parametrize("kernel,dilation", [((2, 4), (1, 1)), ((4, 2), (1, 3)), ((3, 2), (2, 1))])
def test_same_padding_with_even_kernels_is_asymmetric(kernel, dilation, torch):
    """'same' puts the odd extra row/column of padding at the bottom/right, like PyTorch."""
    rng = np.random.default_rng(11)
    x = random_array(rng, (2, 3, 5, 6))
    w = random_array(rng, (4, 3) + kernel)
    y = ops.conv2d(x, w, padding="same", dilation=dilation)
    assert y.shape == (2, 4, 5, 6)
    top_bottom_left_right = _sides("same", kernel, dilation)
    assert_close(y, ref.conv2d(x, w, None, (1, 1), top_bottom_left_right, dilation), *tol(np.float64, 10))
    yt = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), padding="same", dilation=dilation)
    assert_close(y, yt.numpy(), *tol(np.float64, 10))


# Both GEMM layouts of the CPU kernels (one GEMM per image, or the columns of all images side by
# side) against the plain loop nest and PyTorch's gradients, whichever the shape would pick.
STRATEGY_CASES = FAST + [
    ((4, 16, 2, 2), (16, 16, 3, 3), 1, 1, 1, 1),          # deep layer, few positions per image
    ((5, 8, 4, 4), (12, 8, 1, 1), 2, 0, 1, 1),            # 1x1 stride 2 downsampling
    ((3, 6, 3, 5), (6, 2, 3, 3), (1, 2), (1, 0), (2, 1), 3),
]


@pytest.fixture(params=("per_image", "batched", "direct"))
def conv_strategy(request):
    striate._cpu.set_conv2d_strategy(request.param)
    yield request.param
    striate._cpu.set_conv2d_strategy("auto")


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", STRATEGY_CASES,
                         ids=[f"x{c[0]}-w{c[1]}".replace(" ", "") for c in STRATEGY_CASES])
def test_each_gemm_layout_matches_reference_and_torch(case, threads, conv_strategy, torch):
    striate.set_num_threads(threads)
    xs, ws, stride, padding, dilation, groups = case
    rng = np.random.default_rng(11)
    x, w, b = (random_array(rng, s, np.float64) for s in (xs, ws, (ws[0],)))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = ops.conv2d(x, w, b, **kwargs)
    assert_close(y, ops.conv2d_reference(x, w, b, **kwargs), *tol(np.float64, 10))
    g = random_array(rng, y.shape, np.float64)
    xt, wt = (torch.tensor(a, requires_grad=True) for a in (x, w))
    torch.nn.functional.conv2d(xt, wt, None, stride, padding, dilation, groups).backward(torch.tensor(g))
    dx, dw, db = ops.conv2d_backward(g, x, w, **kwargs)
    assert_close(dx, xt.grad.numpy(), *tol(np.float64, 10), "dx")
    assert_close(dw, wt.grad.numpy(), *tol(np.float64, 10), "dw")
    assert_close(db, g.sum(axis=(0, 2, 3)), *tol(np.float64, 10), "db")
    # The transposed convolution runs the same blocks in the other direction.
    if groups == 1 and dilation == 1 and padding != "same":
        yt = ops.conv_transpose2d(g, w, None, stride, padding)
        expected = torch.nn.functional.conv_transpose2d(torch.tensor(g), torch.tensor(w), None, stride, padding)
        assert_close(yt, expected.numpy(), *tol(np.float64, 10), "conv_transpose2d")


def test_conv2d_strategy_names_are_checked():
    with pytest.raises(ValueError, match="set_conv2d_strategy: expected 'auto'"):
        striate._cpu.set_conv2d_strategy("fastest")
    assert striate._cpu.get_conv2d_strategy() == "auto"


# Stride-1 layers wide enough for the padded-copy ("wide") path, forward and backward data (which
# runs as a forward convolution of dy with the flipped weights), against PyTorch: kernels 1..5,
# dilation, groups, zero, asymmetric ("same" with even kernels) and over-sized padding.
WIDE_CASES = [
    ((2, 3, 12, 14), (4, 3, 3, 3), 1, 1, 1),
    ((3, 4, 9, 16), (6, 2, 3, 3), 1, 1, 2),
    ((2, 2, 10, 12), (3, 2, 5, 5), 2, 2, 1),
    ((2, 3, 11, 13), (5, 3, 2, 2), "same", 1, 1),
    ((1, 4, 8, 20), (4, 4, 4, 3), "same", 2, 1),
    ((2, 3, 8, 12), (2, 3, 3, 3), 0, 1, 1),
    ((2, 3, 8, 12), (2, 3, 3, 3), 3, 1, 1),
    ((1, 2, 6, 30), (3, 2, 1, 5), (0, 2), 1, 1),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", WIDE_CASES, ids=[f"x{c[0]}-w{c[1]}-p{c[2]}-d{c[3]}-g{c[4]}".replace(" ", "")
                                                  for c in WIDE_CASES])
def test_stride_one_paths_match_torch(case, threads, torch):
    striate.set_num_threads(threads)
    xs, ws, padding, dilation, groups = case
    _assert_matches_torch(xs, ws, dict(stride=1, padding=padding, dilation=dilation, groups=groups),
                          torch, seed=12)


def _assert_matches_torch(xs, ws, kwargs, torch, seed):
    """conv2d and all three gradients of random float64 data against PyTorch's."""
    rng = np.random.default_rng(seed)
    x, w, b = (random_array(rng, s, np.float64) for s in (xs, ws, (ws[0],)))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kwargs)
    g = random_array(rng, tuple(yt.shape), np.float64)
    yt.backward(torch.tensor(g))
    assert_close(ops.conv2d(x, w, b, **kwargs), yt.detach().numpy(), *tol(np.float64, 10), "y")
    dx, dw, db = ops.conv2d_backward(g, x, w, **kwargs)
    assert_close(dx, xt.grad.numpy(), *tol(np.float64, 10), "dx")
    assert_close(dw, wt.grad.numpy(), *tol(np.float64, 10), "dw")
    assert_close(db, bt.grad.numpy(), *tol(np.float64, 10), "db")
    return g, w


def _assert_float32_matches_torch(xs, ws, kwargs, torch, seed):
    """conv2d and its input and weight gradients of random float32 data against PyTorch's."""
    rng = np.random.default_rng(seed)
    x, w = random_array(rng, xs, np.float32), random_array(rng, ws, np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, wt, None, **kwargs)
    g = random_array(rng, tuple(yt.shape), np.float32)
    yt.backward(torch.tensor(g))
    assert_close(ops.conv2d(x, w, None, **kwargs), yt.detach().numpy(), *tol(np.float32, 10), "y float32")
    dx, dw, _ = ops.conv2d_backward(g, x, w, **kwargs, needs=(True, True, False))
    assert_close(dx, xt.grad.numpy(), *tol(np.float32, 10), "dx float32")
    assert_close(dw, wt.grad.numpy(), *tol(np.float32, 10), "dw float32")


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("xs,ws", [((5, 3, 4, 6), (7, 3, 4, 6)), ((64, 16, 7, 7), (1, 16, 7, 7)),
                                   ((1, 2, 1, 1), (3, 2, 1, 1)), ((3, 1, 5, 5), (2, 1, 5, 5))])
def test_kernel_covering_the_input_matches_torch(xs, ws, threads, torch):
    # a 1x1 output from an unpadded kernel as large as the input runs as a matrix product
    striate.set_num_threads(threads)
    g, w = _assert_matches_torch(xs, ws, {}, torch, seed=13)
    yt2 = ops.conv_transpose2d(g, w)  # and the transposed convolution that runs it backwards
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(g), torch.tensor(w))
    assert_close(yt2, expected.numpy(), *tol(np.float64, 10), "conv_transpose2d")


# Strided layers whose kernel is a multiple of the stride run as stride-1 convolutions of the
# input rearranged space-to-depth: odd sizes, paddings up to and past the kernel, groups.
SPACE_TO_DEPTH_CASES = [
    ((3, 2, 14, 14), (4, 2, 4, 4), 2, 1, 1),
    ((2, 3, 15, 13), (5, 3, 4, 4), 2, 1, 1),
    ((2, 4, 9, 11), (6, 2, 2, 2), 2, 0, 2),
    ((2, 3, 10, 10), (4, 3, 6, 6), 3, 2, 1),
    ((1, 2, 7, 9), (3, 2, 4, 2), 2, (2, 1), 1),
    ((2, 2, 5, 5), (2, 2, 4, 4), 2, 4, 1),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", SPACE_TO_DEPTH_CASES,
                         ids=[f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}-g{c[4]}".replace(" ", "")
                              for c in SPACE_TO_DEPTH_CASES])
def test_strided_kernels_multiple_of_the_stride_match_torch(case, threads, torch):
    striate.set_num_threads(threads)
    xs, ws, stride, padding, groups = case
    _assert_matches_torch(xs, ws, dict(stride=stride, padding=padding, groups=groups), torch, seed=14)


# The direct kernel (stride 1, or 2 with a 3x3 kernel; no GEMM) picks a register tile of output rows x columns x
# channel vectors by shape: maps narrower and wider than its tiles, channel counts off the
# vector width, the 2x2, 3x3 and 5x5 kernels it compiles out and others (dilated, rectangular, 1x1),
# paddings past the kernel (backward data's flipped padding turns negative) and groups.
DIRECT_CASES = [
    ((2, 8, 7, 7), (40, 8, 3, 3), 1, 1, 1, 1),
    ((3, 16, 4, 4), (33, 16, 3, 3), 1, 1, 1, 1),
    ((2, 5, 13, 29), (20, 5, 3, 3), 1, 1, 1, 1),
    ((1, 12, 1, 17), (16, 12, 3, 3), 1, (1, 1), 1, 1),
    ((2, 9, 11, 6), (7, 9, 5, 3), 1, (2, 1), 1, 1),
    ((2, 6, 9, 9), (10, 6, 3, 3), 1, 2, 2, 1),
    ((2, 4, 6, 5), (6, 4, 3, 3), 1, 3, 1, 1),
    ((2, 8, 5, 5), (12, 4, 3, 3), 1, 1, 1, 2),
    ((3, 16, 7, 6), (70, 16, 2, 2), 1, 0, 1, 1),
    ((2, 24, 5, 8), (10, 12, 2, 2), 1, 1, 1, 2),
    ((3, 10, 6, 6), (17, 10, 1, 1), 1, 0, 1, 1),
    ((2, 8, 8, 8), (8, 8, 3, 3), 1, "same", 1, 1),
    ((2, 8, 9, 16), (20, 8, 3, 3), 2, 1, 1, 1),
    ((3, 12, 8, 7), (40, 12, 3, 3), 2, (0, 2), 1, 1),
    ((2, 8, 6, 6), (8, 4, 3, 3), 2, 1, 1, 2),
    ((2, 8, 9, 10), (12, 8, 5, 5), 1, 2, 1, 1),
    ((3, 16, 14, 14), (40, 16, 5, 5), 1, 0, 1, 1),
    # whole 16 x 16 blocks and ragged ones in every packing transpose (channels, rows, depth)
    ((2, 20, 5, 19), (36, 20, 3, 3), 1, 1, 1, 1),
    # 4x4 stride 2 (DCGAN discriminators), odd sizes, groups
    ((2, 8, 14, 14), (20, 8, 4, 4), 2, 1, 1, 1),
    ((3, 9, 15, 12), (33, 9, 4, 4), 2, (0, 2), 1, 1),
    ((2, 16, 9, 9), (12, 8, 4, 4), 2, 3, 1, 2),
]


# Shapes AUTO sends to the direct kernels by their own rules (a 4x4 stride-2 layer as it is,
# not as its space-to-depth image; a weight gradient with few input channels but few outputs or
# stride 2), against PyTorch in float64: forward and all three gradients.
AUTO_DIRECT_CASES = [
    ((3, 32, 14, 14), (64, 32, 4, 4), 2, 1, 1, 1),
    ((2, 1, 28, 28), (32, 1, 4, 4), 2, 1, 1, 1),
    ((2, 3, 12, 12), (16, 3, 3, 3), 1, 1, 1, 1),
    ((2, 1, 28, 28), (6, 1, 5, 5), 1, 0, 1, 1),
    ((2, 4, 9, 11), (8, 4, 2, 2), 1, 0, 1, 1),
    ((2, 2, 10, 10), (6, 1, 4, 4), 2, 1, 1, 2),
]


# (strategy, case, float64 seed, float32 seed): the forced direct kernels on DIRECT_CASES, and AUTO on
# the shapes it routes to them by itself.
DIRECT_RUNS = ([("direct", c, 17, 19) for c in DIRECT_CASES] + [("auto", c, 23, 29) for c in AUTO_DIRECT_CASES])


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("run", DIRECT_RUNS, ids=[f"{r[0]}-x{r[1][0]}-w{r[1][1]}-s{r[1][2]}-p{r[1][3]}-d{r[1][4]}"
                                                  f"-g{r[1][5]}".replace(" ", "") for r in DIRECT_RUNS])
def test_direct_kernels_match_torch(run, threads, torch):
    striate.set_num_threads(threads)
    strategy, (xs, ws, stride, padding, dilation, groups), seed64, seed32 = run
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    striate._cpu.set_conv2d_strategy(strategy)
    try:
        _assert_matches_torch(xs, ws, kwargs, torch, seed=seed64)
        _assert_float32_matches_torch(xs, ws, kwargs, torch, seed=seed32)  # the vector width doubles
    finally:
        striate._cpu.set_conv2d_strategy("auto")
    if strategy == "auto":  # AUTO took the direct weight gradient: bit for bit the forced kernel's
        rng = np.random.default_rng(seed32)
        x, w = random_array(rng, xs, np.float32), random_array(rng, ws, np.float32)
        dy = random_array(rng, ops.conv2d(x, w, None, **kwargs).shape, np.float32)
        auto = ops.conv2d_backward(dy, x, w, **kwargs, needs=(False, True, False))[1]
        striate._cpu.set_conv2d_strategy("direct")
        try:
            forced = ops.conv2d_backward(dy, x, w, **kwargs, needs=(False, True, False))[1]
        finally:
            striate._cpu.set_conv2d_strategy("auto")
        np.testing.assert_array_equal(auto, forced)
