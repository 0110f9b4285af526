"""Property-based fuzzing of every ``striate.ops`` function with hypothesis.

Each test draws shapes (0-size, 1x1, ordinary), dtypes (float32/float64 and wrong ones),
non-contiguous views, NaN/Inf values, geometry integers (small ones and huge ones up to 2**64,
negative ones) and out-of-range indices, then requires one of two outcomes:

- striate raises ValueError/TypeError whose message starts with the op's name, or
- striate returns the reference's result: PyTorch (forward and autograd gradients), OpenCV for
  the pyramids, the numpy float64 loops of tests/reference.py, or an adjoint identity.

Two more rules keep the fuzzer honest: a result PyTorch refuses is a failure (striate must not
invent semantics), and a plain call (contiguous float input, ordinary sizes) that PyTorch
accepts must not be refused by striate, apart from the differences listed in PLAIN_REFUSALS.

Profiles (tests/conftest.py): "ci" (the default, derandomized, a few hundred examples per op)
and "long" (``--hypothesis-profile=long``: 600 examples per op, over 10,000 in all, random).
A memory limit of 256 MiB stands in for the machine's memory while fuzzing, so that huge
geometry that striate accepts stays quick to compute.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.conftest import require

try:  # require skips inside a test (fails under STRIATE_REQUIRE_REFERENCE=1); here the module goes
    require("hypothesis")
    torch = require("torch")
except pytest.skip.Exception as exc:
    pytest.skip(str(exc), allow_module_level=True)

from hypothesis import event, given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import striate.ops as ops  # noqa: E402
from striate.ops import _check  # noqa: E402
from tests import reference as ref  # noqa: E402
from tests.checks import assert_adjoint, assert_close  # noqa: E402
F = torch.nn.functional

FUZZ_MEMORY_BYTES = 256 * 2**20
HUGE = (2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, -1, -(2**63))
# Calls PyTorch accepts that striate refuses on purpose (message fragments).
PLAIN_REFUSALS = (
    "must not be empty",          # striate has no 0-size batches or planes
    "hold no input cell",         # a dilated pooling window entirely in the padding
    "would be empty",             # nor 0-size outputs
)


@pytest.fixture(autouse=True, scope="module")
def _small_memory():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_check, "_host_memory_bytes", lambda: FUZZ_MEMORY_BYTES)
        yield


class Refused(Exception):
    """striate raised a clear error: an accepted outcome."""


def call(op: str, fn, plain: bool, reference=None):
    """Run fn; a ValueError/TypeError must name `op` first. Returns fn's result.

    When striate refuses a plain call, `reference()` (PyTorch) must refuse it too, unless the
    refusal is one of PLAIN_REFUSALS.
    """
    try:
        result = fn()
        event(f"{op}: returned a result")
        return result
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert message.startswith(f"{op}:"), f"the error does not name {op}: {type(exc).__name__}: {message}"
        note(f"refused: {message}")
        event(f"{op}: refused")
        if plain and reference is not None and not any(f in message for f in PLAIN_REFUSALS):
            try:
                reference()
            except Exception:  # noqa: BLE001 - any refusal by the reference agrees
                pass
            else:
                raise AssertionError(f"{op} refused a call PyTorch accepts: {message}")
        raise Refused from exc


def reference_result(op: str, fn):
    """The reference's result; a refusal means striate returned a result it refuses."""
    try:
        return fn()
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise AssertionError(f"{op} returned a result the reference refuses: {exc}") from exc


def run(test):
    """Decorator: a Refused outcome ends the example successfully."""
    def wrapper(*args, **kwargs):
        try:
            test(*args, **kwargs)
        except Refused:
            pass
    wrapper.__name__, wrapper.__doc__ = test.__name__, test.__doc__
    return wrapper


# ------------------------------------------------------------------- strategies

class _Example:
    """Whether the current example may break the rules (set by `begin`, read by the
    strategies below at draw time). One example in four is wild: each of its sizes,
    geometry integers, dtypes and layouts may then be bad; the others are plain calls."""

    wild = False


EXAMPLE = _Example()


def begin(draw) -> bool:
    EXAMPLE.wild = draw(st.integers(0, 3)) == 0
    return EXAMPLE.wild


@st.composite
def geometry(draw, lo: int, hi: int):
    """A small int in [lo, hi]; in a wild example sometimes a huge or negative one."""
    if EXAMPLE.wild and draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(HUGE))
    return draw(st.integers(lo, hi))


def pair_of(lo: int, hi: int):
    return st.one_of(geometry(lo, hi), st.tuples(geometry(lo, hi), geometry(lo, hi)))


def is_plain_int(v) -> bool:
    values = v if isinstance(v, tuple) else (v,)
    return all(isinstance(a, int) and 0 <= a < 2**31 - 1 for a in values)


@st.composite
def dims(draw, lo=1, hi=6):
    """A length in [lo, hi]; in a wild example sometimes 0."""
    if EXAMPLE.wild and draw(st.integers(0, 3)) == 0:
        return 0
    return draw(st.integers(lo, hi))


@st.composite
def declared_dims(draw, lo=1, hi=6):
    """A length of a declared shape (x_shape): like dims, and in a wild example sometimes huge."""
    if EXAMPLE.wild and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([2**31, 2**40, 2**62, 2**63]))
    return draw(dims(lo, hi))


@st.composite
def float_dtype(draw):
    """float32 or float64; in a wild example sometimes int32 or float16."""
    if EXAMPLE.wild and draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(["int32", "float16"]))
    return draw(st.sampled_from(["float32", "float64"]))


@st.composite
def arrays(draw, shape, dtype=None, specials=True):
    """(array, plain): values N(0,1), sometimes NaN/Inf; in a wild example sometimes a
    non-contiguous view."""
    dtype = draw(float_dtype()) if dtype is None else dtype
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    strided = EXAMPLE.wild and draw(st.integers(0, 3)) == 0
    full = list(shape)
    if strided and full:
        full[-1] *= 2
    a = rng.standard_normal(full)
    if specials and a.size and draw(st.integers(0, 4)) == 0:
        flat = a.reshape(-1)
        for v in (np.nan, np.inf, -np.inf):
            flat[rng.integers(0, flat.size)] = v
    with np.errstate(all="ignore"):  # NaN/Inf into int32 is just another bad input
        a = a.astype(dtype)
    if strided and full:
        a = a[..., ::2]
    plain = dtype in ("float32", "float64") and a.flags.c_contiguous and a.size > 0
    return a, plain


def tolerance(dtype):
    return (1e-4, 1e-4) if np.dtype(dtype) == np.float32 else (1e-10, 1e-10)


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def np_pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


# ------------------------------------------------------------------------ pad2d

PAD_MODES = ("constant", "reflect", "replicate", "circular")


@given(data=st.data())
@run
def test_fuzz_pad2d(data):
    begin(data.draw)
    shape = tuple(data.draw(dims()) for _ in range(4))
    x, plain = data.draw(arrays(shape))
    pad = tuple(data.draw(geometry(0, 5)) for _ in range(4))
    mode = data.draw(st.sampled_from(PAD_MODES))
    value = data.draw(st.sampled_from([0.0, 1.5, -2, float("nan"), float("inf")]))
    plain = plain and all(map(is_plain_int, pad))

    def torch_pad():
        kw = {"value": value} if mode == "constant" else {}
        return F.pad(t64(x), pad, mode=mode, **kw)

    y = call("pad2d", lambda: ops.pad2d(x, pad, mode, value), plain, torch_pad)
    assert_close(y, reference_result("pad2d", torch_pad).numpy(), 0, 0)


@given(data=st.data())
@run
def test_fuzz_pad2d_backward(data):
    begin(data.draw)
    x_shape = tuple(data.draw(declared_dims()) for _ in range(4))
    pad = tuple(data.draw(geometry(0, 4)) for _ in range(4))
    mode = data.draw(st.sampled_from(PAD_MODES))
    dy_shape = tuple(min(n, 7) for n in x_shape[:2]) + (
        min(max(0, x_shape[2] + pad[2] + pad[3]), 9) if is_plain_int(pad) else 2,
        min(max(0, x_shape[3] + pad[0] + pad[1]), 9) if is_plain_int(pad) else 2)
    if EXAMPLE.wild and data.draw(st.booleans()):
        dy_shape = dy_shape[:3] + (dy_shape[3] + 1,)  # a wrong dy shape
    dy, plain = data.draw(arrays(dy_shape, specials=False))
    plain = plain and is_plain_int(pad) and all(n < 2**31 for n in x_shape)

    def torch_grad():
        x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
        F.pad(x, pad, mode=mode).backward(t64(dy))
        return x.grad

    dx = call("pad2d_backward", lambda: ops.pad2d_backward(dy, x_shape, pad, mode), plain, torch_grad)
    assert_close(dx, reference_result("pad2d_backward", torch_grad).numpy(), *tolerance(dy.dtype))


# ----------------------------------------------------------------------- conv2d

@st.composite
def conv_case(draw):
    begin(draw)
    groups = draw(st.sampled_from([0, -1, 2**31])) if EXAMPLE.wild and draw(st.booleans()) else \
        draw(st.integers(1, 3))
    g = groups if isinstance(groups, int) and 1 <= groups <= 3 else 1
    N, H, W = draw(dims()), draw(dims(1, 8)), draw(dims(1, 8))
    C = g * draw(st.integers(1, 2))
    K = g * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(float_dtype())
    x, plain_x = draw(arrays((N, C, H, W), dtype))
    w_dtype = "float64" if EXAMPLE.wild and draw(st.integers(0, 3)) == 0 else dtype
    w, plain_w = draw(arrays((K, C // g, kh, kw), w_dtype, specials=False))
    b = None
    if draw(st.booleans()):
        b, _ = draw(arrays((K,), w.dtype.name, specials=False))
        b = np.ascontiguousarray(b)
    stride = draw(pair_of(1, 3))
    dilation = draw(pair_of(1, 3))
    padding = draw(st.one_of(pair_of(0, 3), st.sampled_from(["same", "valid"])))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    plain = (plain_x and plain_w and x.dtype == w.dtype and groups == g and is_plain_int(stride)
             and is_plain_int(dilation) and (isinstance(padding, str) or is_plain_int(padding)))
    return x, w, b, stride, padding, dilation, groups, mode, plain


def torch_conv(x, w, b, stride, padding, dilation, groups, mode, requires_grad=False):
    with warnings.catch_warnings():  # PyTorch warns that some 'same' paddings copy the input
        warnings.simplefilter("ignore", UserWarning)
        return _torch_conv(x, w, b, stride, padding, dilation, groups, mode, requires_grad)


def _torch_conv(x, w, b, stride, padding, dilation, groups, mode, requires_grad):
    xt, wt = t64(x).requires_grad_(requires_grad), t64(w).requires_grad_(requires_grad)
    bt = None if b is None else t64(b).requires_grad_(requires_grad)
    if mode != "zeros":
        if padding == "same" and np_pair(stride) != (1, 1):
            raise ValueError("nn.Conv2d refuses padding='same' with a stride")  # as PyTorch does
        if isinstance(padding, str):
            kh, kw = w.shape[2:]
            dh, dw = np_pair(dilation)
            th, tw = dh * (kh - 1), dw * (kw - 1)
            amounts = (0, 0, 0, 0) if padding == "valid" else (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        else:
            ph, pw = np_pair(padding)
            amounts = (pw, pw, ph, ph)
        y = F.conv2d(F.pad(xt, amounts, mode=mode), wt, bt, stride, 0, dilation, groups)
    else:
        y = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    return y, (xt, wt, bt)


@given(case=conv_case())
@run
def test_fuzz_conv2d(case):
    x, w, b, stride, padding, dilation, groups, mode, plain = case
    y = call("conv2d", lambda: ops.conv2d(x, w, b, stride, padding, dilation, groups, mode), plain,
             lambda: torch_conv(x, w, b, stride, padding, dilation, groups, mode))
    expected = reference_result("conv2d", lambda: torch_conv(x, w, b, stride, padding, dilation,
                                                             groups, mode)[0])
    assert_close(y, expected.detach().numpy(), *tolerance(x.dtype))
    if mode == "zeros" and not isinstance(padding, str) and x.size <= 2000:
        y_ref = ops.conv2d_reference(x, w, b, stride, padding, dilation, groups)
        assert_close(y_ref, expected.detach().numpy(), *tolerance(x.dtype))


@given(case=conv_case(), needs=st.tuples(st.booleans(), st.booleans(), st.booleans()))
@run
def test_fuzz_conv2d_backward(case, needs):
    x, w, _, stride, padding, dilation, groups, mode, plain = case
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # gradients: finite inputs
    y = call("conv2d", lambda: ops.conv2d(x, w, None, stride, padding, dilation, groups, mode), False)
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    out = call("conv2d_backward", lambda: ops.conv2d_backward(
        dy, x, w, stride, padding, dilation, groups, mode, needs), plain)
    yt, (xt, wt, _) = torch_conv(x, w, None, stride, padding, dilation, groups, mode, True)
    yt.backward(t64(dy))
    atol, rtol = tolerance(x.dtype)
    scale = max(1.0, float(np.abs(dy).max()) * w.size)
    for got, want, need in zip(out, (xt.grad, wt.grad, t64(dy).sum(dim=(0, 2, 3))), needs):
        if need:
            assert_close(got, want.numpy(), atol * scale, rtol)
        else:
            assert got is None


# ------------------------------------------------------------- conv_transpose2d

@st.composite
def conv_transpose_case(draw):
    begin(draw)
    g = draw(st.integers(1, 2))
    N, H, W = draw(dims()), draw(dims(1, 6)), draw(dims(1, 6))
    C, Kg = g * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dtype = draw(float_dtype())
    x, plain_x = draw(arrays((N, C, H, W), dtype))
    w, plain_w = draw(arrays((C, Kg, kh, kw), dtype, specials=False))
    b = np.ascontiguousarray(draw(arrays((Kg * g,), dtype, specials=False))[0]) if draw(st.booleans()) else None
    stride, padding = draw(pair_of(1, 3)), draw(pair_of(0, 3))
    output_padding, dilation = draw(pair_of(0, 2)), draw(pair_of(1, 3))
    plain = plain_x and plain_w and all(map(is_plain_int, (stride, padding, output_padding, dilation)))
    return x, w, b, stride, padding, output_padding, g, dilation, plain


@given(case=conv_transpose_case())
@run
def test_fuzz_conv_transpose2d(case):
    x, w, b, stride, padding, output_padding, groups, dilation, plain = case

    def torch_ct():
        return F.conv_transpose2d(t64(x), t64(w), None if b is None else t64(b), stride, padding,
                                  output_padding, groups, dilation)

    y = call("conv_transpose2d", lambda: ops.conv_transpose2d(
        x, w, b, stride, padding, output_padding, groups, dilation), plain, torch_ct)
    assert_close(y, reference_result("conv_transpose2d", torch_ct).numpy(), *tolerance(x.dtype))


@given(case=conv_transpose_case())
@run
def test_fuzz_conv_transpose2d_backward(case):
    x, w, _, stride, padding, output_padding, groups, dilation, plain = case
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    y = call("conv_transpose2d", lambda: ops.conv_transpose2d(
        x, w, None, stride, padding, output_padding, groups, dilation), False)
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    dx, dw, db = call("conv_transpose2d_backward", lambda: ops.conv_transpose2d_backward(
        dy, x, w, stride, padding, output_padding, groups, dilation), plain)
    xt, wt = t64(x).requires_grad_(), t64(w).requires_grad_()
    F.conv_transpose2d(xt, wt, None, stride, padding, output_padding, groups, dilation).backward(t64(dy))
    atol, rtol = tolerance(x.dtype)
    scale = max(1.0, float(np.abs(dy).sum()))
    assert_close(dx, xt.grad.numpy(), atol * scale, rtol)
    assert_close(dw, wt.grad.numpy(), atol * scale, rtol)
    assert_close(db, dy.astype(np.float64).sum(axis=(0, 2, 3)), atol * scale, rtol)


# ---------------------------------------------------------------------- pooling

@st.composite
def pool_case(draw, dilated=True):
    begin(draw)
    shape = (draw(dims(1, 3)), draw(dims(1, 3)), draw(dims(1, 9)), draw(dims(1, 9)))
    x, plain = draw(arrays(shape))
    kernel = draw(pair_of(1, 4))
    stride = draw(st.one_of(st.none(), pair_of(1, 4)))
    padding = draw(pair_of(0, 2))
    dilation = draw(pair_of(1, 3)) if dilated else 1
    ceil_mode = draw(st.booleans())
    plain = plain and all(is_plain_int(v) for v in (kernel, padding, dilation)) and (
        stride is None or is_plain_int(stride))
    return x, kernel, stride, padding, dilation, ceil_mode, plain


@given(case=pool_case())
@run
def test_fuzz_max_pool2d(case):
    x, kernel, stride, padding, dilation, ceil_mode, plain = case

    def torch_pool():
        return F.max_pool2d(t64(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)

    y, idx = call("max_pool2d", lambda: ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
                  plain, torch_pool)
    ty, tidx = reference_result("max_pool2d", torch_pool)
    assert_close(y, ty.numpy(), 0, 0)
    np.testing.assert_array_equal(idx, tidx.numpy())


@given(case=pool_case(), data=st.data())
@run
def test_fuzz_max_pool2d_backward(case, data):
    x, kernel, stride, padding, dilation, ceil_mode, plain = case
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    with_geometry = data.draw(st.booleans())
    y, idx = call("max_pool2d", lambda: ops.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode),
                  False)
    idx = idx.copy()
    if EXAMPLE.wild and data.draw(st.booleans()):  # an index outside the plane
        idx.reshape(-1)[data.draw(st.integers(0, idx.size - 1))] = data.draw(
            st.sampled_from([-1, x.shape[2] * x.shape[3], 2**62, -(2**63)]))
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    geo = (kernel, stride, padding, dilation, ceil_mode) if with_geometry else (None, None, 0, 1, False)
    x_shape = x.shape
    if EXAMPLE.wild and data.draw(st.booleans()):  # a huge declared input: refused, not allocated
        x_shape = x.shape[:2] + (data.draw(declared_dims()), data.draw(declared_dims()))
    dx = call("max_pool2d_backward", lambda: ops.max_pool2d_backward(dy, idx, x_shape, *geo), False)
    assert x_shape == x.shape or dx.shape == tuple(x_shape)
    if x_shape != x.shape:
        return
    assert ((idx >= 0) & (idx < x.shape[2] * x.shape[3])).all(), \
        "max_pool2d_backward accepted an index outside the input plane"
    expected = np.zeros((x.shape[0], x.shape[1], x.shape[2] * x.shape[3]))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            np.add.at(expected[n, c], idx[n, c].ravel(), dy[n, c].astype(np.float64).ravel())
    assert_close(dx, expected.reshape(x.shape), *tolerance(x.dtype))


@given(case=pool_case(dilated=False), count_include_pad=st.booleans(), data=st.data())
@run
def test_fuzz_avg_pool2d(case, count_include_pad, data):
    x, kernel, stride, padding, _, ceil_mode, plain = case
    divisor = data.draw(st.one_of(st.none(), st.none(), geometry(1, 5)))
    plain = plain and (divisor is None or is_plain_int(divisor))

    def torch_pool():
        return F.avg_pool2d(t64(x), kernel, stride, padding, ceil_mode, count_include_pad, divisor)

    y = call("avg_pool2d", lambda: ops.avg_pool2d(x, kernel, stride, padding, ceil_mode,
                                                  count_include_pad, divisor), plain, torch_pool)
    assert_close(y, reference_result("avg_pool2d", torch_pool).numpy(), *tolerance(x.dtype))


@given(case=pool_case(dilated=False), count_include_pad=st.booleans(), summed=st.booleans())
@run
def test_fuzz_avg_and_sum_pool2d_backward(case, count_include_pad, summed):
    x, kernel, stride, padding, _, ceil_mode, plain = case
    op = "sum_pool2d" if summed else "avg_pool2d"
    divisor = 1 if summed else None
    if summed:
        y = call(op, lambda: ops.sum_pool2d(x, kernel, stride, padding, ceil_mode), False)
    else:
        y = call(op, lambda: ops.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad),
                 False)
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    if summed:
        dx = call(op + "_backward", lambda: ops.sum_pool2d_backward(dy, x.shape, kernel, stride, padding,
                                                                    ceil_mode), plain)
    else:
        dx = call(op + "_backward", lambda: ops.avg_pool2d_backward(
            dy, x.shape, kernel, stride, padding, ceil_mode, count_include_pad), plain)
    xt = t64(x).requires_grad_()
    F.avg_pool2d(xt, kernel, stride, padding, ceil_mode, summed or count_include_pad,
                 divisor).backward(t64(dy))
    assert_close(dx, xt.grad.numpy(), *tolerance(x.dtype))


@given(case=pool_case(dilated=False))
@run
def test_fuzz_sum_pool2d(case):
    x, kernel, stride, padding, _, ceil_mode, plain = case

    def torch_pool():
        return F.avg_pool2d(t64(x), kernel, stride, padding, ceil_mode, True, 1)

    y = call("sum_pool2d", lambda: ops.sum_pool2d(x, kernel, stride, padding, ceil_mode), plain,
             torch_pool)
    assert_close(y, reference_result("sum_pool2d", torch_pool).numpy(), *tolerance(x.dtype))


# -------------------------------------------------------------------- unpooling

@st.composite
def unpool_case(draw):
    begin(draw)
    shape = (draw(dims(1, 3)), draw(dims(1, 3)), draw(dims(1, 5)), draw(dims(1, 5)))
    x, plain = draw(arrays(shape))
    kernel, stride, padding = draw(pair_of(1, 3)), draw(st.one_of(st.none(), pair_of(1, 3))), draw(pair_of(0, 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Distinct in-plane indices per (n, c) (PyTorch leaves duplicates unspecified), limited to
    # the default output plane when it is small, or anything in a bad-index draw.
    plain = plain and all(is_plain_int(v) for v in (kernel, padding)) and (stride is None or is_plain_int(stride))
    bad = EXAMPLE.wild and draw(st.booleans())
    return x, kernel, stride, padding, rng, bad, plain


def _default_unpool_hw(x, kernel, stride, padding):
    k, p = np_pair(kernel), np_pair(padding)
    s = k if stride is None else np_pair(stride)
    return tuple((x.shape[2 + i] - 1) * s[i] - 2 * p[i] + k[i] for i in range(2))


def _indices(x, plane, rng, bad):
    """Per-plane flat indices into an output plane of `plane` cells: distinct when the plane
    has room (PyTorch leaves duplicates unspecified), one out of range when `bad`."""
    N, C = x.shape[:2]
    count = x.shape[2] * x.shape[3]
    idx = np.empty((N, C, count), np.int64)
    for n in range(N):
        for c in range(C):
            idx[n, c] = rng.permutation(plane)[:count] if plane >= count else rng.integers(0, plane, count)
    if bad:
        idx.reshape(-1)[rng.integers(0, idx.size)] = rng.choice([-1, plane, 2**62])
    return idx.reshape(x.shape)


@given(case=unpool_case())
@run
def test_fuzz_max_unpool2d(case):
    x, kernel, stride, padding, rng, bad, plain = case
    if x.ndim != 4 or x.size == 0:
        return
    hw = _default_unpool_hw(x, kernel, stride, padding) if plain else (2, 2)
    plane = hw[0] * hw[1] if min(hw) > 0 else 1
    if plane > 4096:
        return
    idx = _indices(x, plane, rng, bad)
    duplicates = any(len(set(idx[n, c].ravel())) < idx[n, c].size for n in range(idx.shape[0])
                     for c in range(idx.shape[1]))

    def torch_unpool():
        return F.max_unpool2d(t64(x), torch.from_numpy(idx), kernel, stride, padding)

    y = call("max_unpool2d", lambda: ops.max_unpool2d(x, idx, kernel, stride, padding),
             plain and not bad and not duplicates, torch_unpool)
    assert not bad, "max_unpool2d accepted an index outside the output plane"
    assert_close(y, ref.max_unpool2d(x, idx, y.shape[2:]), 0, 0)
    if not duplicates:
        assert_close(y, reference_result("max_unpool2d", torch_unpool).numpy(), 0, 0)


@given(case=unpool_case(), data=st.data())
@run
def test_fuzz_max_unpool2d_backward(case, data):
    x, _, _, _, rng, bad, plain = case
    Ho, Wo = data.draw(dims(1, 6)), data.draw(dims(1, 6))
    if x.ndim != 4 or x.size == 0 or Ho * Wo == 0:
        return
    idx = _indices(x, Ho * Wo, rng, bad)
    dy, plain_dy = data.draw(arrays((x.shape[0], x.shape[1], Ho, Wo)))
    dx = call("max_unpool2d_backward", lambda: ops.max_unpool2d_backward(dy, idx), False)
    assert not bad, "max_unpool2d_backward accepted an index outside the output plane"
    flat = dy.reshape(dy.shape[0], dy.shape[1], -1)
    expected = np.take_along_axis(flat, idx.reshape(idx.shape[0], idx.shape[1], -1), axis=2)
    assert_close(dx, expected.reshape(idx.shape), 0, 0)


# ---------------------------------------------------------------------- dropout

@given(data=st.data())
@run
def test_fuzz_dropout(data):
    begin(data.draw)
    shape = tuple(data.draw(dims(1, 5)) for _ in range(data.draw(st.integers(1, 4))))
    x, plain = data.draw(arrays(shape))
    bad = [-0.1, 1.5, float("nan"), "0.5"] if EXAMPLE.wild else []
    p = data.draw(st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0] + bad)))
    seed = data.draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**64 - 1] + bad[:2])))
    offset = data.draw(st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, -1, 2**64] if bad else [0])))
    y, mask = call("dropout", lambda: ops.dropout(x, p, seed, offset), False)
    assert 0 <= p <= 1 and 0 <= seed < 2**64 and 0 <= offset < 2**64
    expected_mask = ref.dropout_mask(x.size, p, seed, offset).reshape(x.shape)
    np.testing.assert_array_equal(mask, expected_mask)
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    with np.errstate(invalid="ignore", over="ignore"):  # a dropped NaN stays NaN, as in PyTorch
        expected = x.astype(np.float64) * np.where(expected_mask == 1, scale, 0.0)
    if p == 1:
        expected = np.zeros(x.shape)  # documented: p == 1 gives zeros
    assert_close(y, expected, *tolerance(x.dtype))
    dy, _ = data.draw(arrays(shape, x.dtype.name, specials=False))
    dx = call("dropout_backward", lambda: ops.dropout_backward(np.ascontiguousarray(dy), mask, p), False)
    assert_close(dx, np.where(expected_mask == 1, dy.astype(np.float64) * scale, 0.0), *tolerance(x.dtype))


# ----------------------------------------------------------------------- matmul

@given(data=st.data())
@run
def test_fuzz_matmul(data):
    begin(data.draw)
    M, K, N = data.draw(dims(0, 7)), data.draw(dims(0, 7)), data.draw(dims(0, 7))
    trans_a, trans_b = data.draw(st.booleans()), data.draw(st.booleans())
    Kb = K + 1 if EXAMPLE.wild and data.draw(st.booleans()) else K  # mismatched inner sizes
    a, plain_a = data.draw(arrays((K, M) if trans_a else (M, K)))
    b, plain_b = data.draw(arrays((N, Kb) if trans_b else (Kb, N), a.dtype.name))
    c = call("matmul", lambda: ops.matmul(a, b, trans_a, trans_b), False)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    assert_close(c, expected, *tolerance(a.dtype))


# ---------------------------------------------------------------------- pyramid

def _cv2_planes(fn, x, **kw):
    planes = [fn(np.ascontiguousarray(x[n, c]), **kw) for n in range(x.shape[0]) for c in range(x.shape[1])]
    return np.stack(planes).reshape(x.shape[:2] + planes[0].shape)


def _planes(data, side):
    """An (N, C, H, W) input of sides up to `side` for the image ops (finite values)."""
    begin(data.draw)
    shape = (data.draw(dims(1, 2)), data.draw(dims(1, 2)), data.draw(dims(1, side)), data.draw(dims(1, side)))
    return shape, data.draw(arrays(shape, specials=False))[0]


@given(data=st.data())
@run
def test_fuzz_pyr_down(data):
    cv2 = require("cv2")
    _, x = _planes(data, 11)
    y = call("pyr_down", lambda: ops.pyr_down(x), False)
    assert_close(y, _cv2_planes(cv2.pyrDown, x.astype(np.float64)), *tolerance(x.dtype))
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    dx = call("pyr_down_backward", lambda: ops.pyr_down_backward(dy, x.shape), False)
    assert_adjoint(ref.pyr_down, lambda g: dx.astype(np.float64), x.astype(np.float64), dy, rtol=1e-5)


@given(data=st.data())
@run
def test_fuzz_pyr_up(data):
    cv2 = require("cv2")
    shape, x = _planes(data, 7)
    H, W = shape[2:]
    size = data.draw(st.one_of(st.none(), st.tuples(st.integers(2 * H - 1, 2 * H + 1),
                                                    st.integers(2 * W - 1, 2 * W + 1)),
                               st.tuples(geometry(1, 20), geometry(1, 20))))
    y = call("pyr_up", lambda: ops.pyr_up(x, size), False)
    Ho, Wo = y.shape[2:]
    assert abs(Ho - 2 * H) == Ho % 2 and abs(Wo - 2 * W) == Wo % 2
    assert_close(y, ref.pyr_up(x, (Ho, Wo)), *tolerance(x.dtype))
    if not (W == 1 and Wo == 3):  # cv2.pyrUp leaves the third column of that case unwritten
        assert_close(y, _cv2_planes(cv2.pyrUp, x.astype(np.float64), dstsize=(Wo, Ho)), *tolerance(x.dtype))
    dy = np.random.default_rng(y.size).standard_normal(y.shape).astype(x.dtype)
    dx = call("pyr_up_backward", lambda: ops.pyr_up_backward(dy, x.shape), False)
    assert_adjoint(lambda a: ref.pyr_up(a, (Ho, Wo)), lambda g: dx.astype(np.float64),
                   x.astype(np.float64), dy, rtol=1e-5)


# ------------------------------------------------------------------------- warp

@given(data=st.data())
@run
def test_fuzz_warp_affine(data):
    shape, x = _planes(data, 7)
    theta, _ = data.draw(arrays((shape[0], 2, 3), x.dtype.name if x.dtype.kind == "f" else "float64"))
    size = data.draw(st.one_of(st.none(), st.tuples(geometry(1, 8), geometry(1, 8))))
    mode = data.draw(st.sampled_from(["bilinear", "nearest"]))
    padding_mode = data.draw(st.sampled_from(["zeros", "border", "reflection"]))
    align_corners = data.draw(st.booleans())
    y = call("warp_affine", lambda: ops.warp_affine(x, theta, size, mode, padding_mode, align_corners), False)
    if not (np.isfinite(theta).all() and mode == "bilinear"):  # nearest: float ties may round apart
        return
    Ho, Wo = y.shape[2:]
    with warnings.catch_warnings():  # PyTorch warns about 1-pixel grids with align_corners
        warnings.simplefilter("ignore", UserWarning)
        grid = F.affine_grid(t64(theta), (shape[0], shape[1], Ho, Wo), align_corners=align_corners)
        expected = F.grid_sample(t64(x), grid, mode, padding_mode, align_corners)
    assert_close(y, expected.numpy(), *(np.array(tolerance(x.dtype)) * 100))
