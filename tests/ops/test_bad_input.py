"""Malformed calls: every striate.ops function raises ValueError/TypeError naming the argument,
and neither the public functions nor the raw striate._cpu bindings ever crash the interpreter.

BAD_CALLS is a table (name, call, exception type, message fragment). The same table is replayed
in a child interpreter, so a segfault or abort shows up as a failing return code instead of
killing the test run. RAW_CALLS hands the bindings arguments that disagree with each other; each
is run in its own child so that one crash names its case.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import striate.ops as ops
from striate import _cpu

ROOT = Path(__file__).resolve().parents[2]

x = np.zeros((2, 4, 6, 6), np.float32)
w = np.zeros((6, 4, 3, 3), np.float32)
b = np.zeros(6, np.float32)
y = ops.conv2d(x, w, b)  # (2, 6, 4, 4)
xp, idx = ops.max_pool2d(x, 2)  # (2, 4, 3, 3)
wt = np.zeros((4, 3, 3, 3), np.float32)  # conv_transpose2d weight: (Cin, Cout/groups, kh, kw)
theta = np.zeros((2, 2, 3), np.float32)
mask = np.ones(x.shape, np.uint8)


def _bad_index(value, where=0):
    out = idx.copy()
    out.reshape(-1)[where] = value
    return out


BAD_CALLS = [
    # ---- pad2d
    ("pad2d int32", lambda: ops.pad2d(x.astype(np.int32), (1, 1, 1, 1)), TypeError, "x must have dtype"),
    ("pad2d float16", lambda: ops.pad2d(x.astype(np.float16), (1, 1, 1, 1)), TypeError, "x must have dtype"),
    ("pad2d list", lambda: ops.pad2d(x.tolist(), (1, 1, 1, 1)), TypeError, "x must be a numpy"),
    ("pad2d rank 3", lambda: ops.pad2d(x[0], (1, 1, 1, 1)), ValueError, "x must be 4-D"),
    ("pad2d non-contiguous", lambda: ops.pad2d(x[:, :, ::2], (1, 1, 1, 1)), ValueError, "x must be C-contiguous"),
    ("pad2d empty batch", lambda: ops.pad2d(np.zeros((0, 4, 6, 6)), (1, 1, 1, 1)), ValueError, "x must not be empty"),
    ("pad2d negative pad", lambda: ops.pad2d(x, (1, -1, 0, 0)), ValueError, "pad"),
    ("pad2d pad of 2", lambda: ops.pad2d(x, (1, 1)), ValueError, "pad must be (left, right, top, bottom)"),
    ("pad2d float pad", lambda: ops.pad2d(x, (1.5, 1, 1, 1)), TypeError, "pad"),
    ("pad2d reflect too large", lambda: ops.pad2d(x, (0, 6, 0, 0), "reflect"), ValueError, "reflect padding"),
    ("pad2d circular too large", lambda: ops.pad2d(x, (0, 0, 7, 0), "circular"), ValueError, "circular padding"),
    ("pad2d unknown mode", lambda: ops.pad2d(x, (1, 1, 1, 1), "wrap"), ValueError, "mode"),
    ("pad2d_backward dy shape", lambda: ops.pad2d_backward(x, (2, 4, 6, 6), (1, 1, 1, 1)), ValueError,
     "dy must have shape"),
    ("pad2d_backward x_shape", lambda: ops.pad2d_backward(x, (2, 4, 6), (0, 0, 0, 0)), ValueError, "x_shape"),
    # ---- conv2d
    ("conv2d x int32", lambda: ops.conv2d(x.astype(np.int32), w), TypeError, "x must have dtype"),
    ("conv2d x float16", lambda: ops.conv2d(x.astype(np.float16), w), TypeError, "x must have dtype"),
    ("conv2d weight dtype", lambda: ops.conv2d(x, w.astype(np.float64)), TypeError, "weight must have the dtype of x"),
    ("conv2d bias dtype", lambda: ops.conv2d(x, w, b.astype(np.float64)), TypeError, "bias must have the dtype of x"),
    ("conv2d x rank 3", lambda: ops.conv2d(x[0], w), ValueError, "x must be 4-D"),
    ("conv2d weight rank 3", lambda: ops.conv2d(x, w[0]), ValueError, "weight must be 4-D"),
    ("conv2d weight channels", lambda: ops.conv2d(x, np.zeros((6, 3, 3, 3), np.float32)), ValueError,
     "weight.shape[1]"),
    ("conv2d bias length", lambda: ops.conv2d(x, w, np.zeros(5, np.float32)), ValueError, "bias must have shape"),
    ("conv2d bias rank", lambda: ops.conv2d(x, w, np.zeros((6, 1), np.float32)), ValueError, "bias must be 1-D"),
    ("conv2d non-contiguous x", lambda: ops.conv2d(x[:, :, ::2], w), ValueError, "x must be C-contiguous"),
    ("conv2d non-contiguous weight", lambda: ops.conv2d(x, np.zeros((6, 4, 3, 6), np.float32)[..., ::2]), ValueError,
     "weight must be C-contiguous"),
    ("conv2d list x", lambda: ops.conv2d(x.tolist(), w), TypeError, "x must be a numpy"),
    ("conv2d list weight", lambda: ops.conv2d(x, w.tolist()), TypeError, "weight must be a numpy"),
    ("conv2d empty batch", lambda: ops.conv2d(np.zeros((0, 4, 6, 6), np.float32), w), ValueError,
     "x must not be empty"),
    ("conv2d groups not dividing", lambda: ops.conv2d(x, np.zeros((6, 2, 3, 3), np.float32), groups=3), ValueError,
     "divisible by groups"),
    ("conv2d groups 0", lambda: ops.conv2d(x, w, groups=0), ValueError, "groups must be >= 1"),
    ("conv2d stride 0", lambda: ops.conv2d(x, w, stride=0), ValueError, "stride must be >= 1"),
    ("conv2d stride float", lambda: ops.conv2d(x, w, stride=1.5), TypeError, "stride must be an int"),
    ("conv2d stride triple", lambda: ops.conv2d(x, w, stride=(1, 1, 1)), ValueError, "stride"),
    ("conv2d dilation 0", lambda: ops.conv2d(x, w, dilation=(1, 0)), ValueError, "dilation must be >= 1"),
    ("conv2d negative padding", lambda: ops.conv2d(x, w, padding=-1), ValueError, "padding must be >= 0"),
    ("conv2d padding string", lambda: ops.conv2d(x, w, padding="full"), ValueError, "padding"),
    ("conv2d same with stride", lambda: ops.conv2d(x, w, stride=2, padding="same"), ValueError, "same"),
    ("conv2d kernel larger than input", lambda: ops.conv2d(x, np.zeros((6, 4, 7, 7), np.float32)), ValueError,
     "larger than the padded input"),
    ("conv2d dilated kernel too large", lambda: ops.conv2d(x, w, dilation=3), ValueError,
     "larger than the padded input"),
    ("conv2d reflect padding too large", lambda: ops.conv2d(x, w, padding=6, padding_mode="reflect"), ValueError,
     "reflect padding"),
    ("conv2d padding_mode", lambda: ops.conv2d(x, w, padding=1, padding_mode="mirror"), ValueError, "padding_mode"),
    ("conv2d_backward dy shape", lambda: ops.conv2d_backward(x, x, w), ValueError, "dy must have shape"),
    ("conv2d_backward dy dtype", lambda: ops.conv2d_backward(y.astype(np.float64), x, w), TypeError, "dy"),
    ("conv2d_backward needs", lambda: ops.conv2d_backward(y, x, w, needs=(True, True)), ValueError, "needs"),
    ("conv2d_reference weight channels", lambda: ops.conv2d_reference(x, np.zeros((6, 2, 3, 3), np.float32)),
     ValueError, "weight.shape[1]"),
    # ---- conv_transpose2d
    ("conv_transpose2d x int32", lambda: ops.conv_transpose2d(x.astype(np.int32), wt), TypeError, "x must have dtype"),
    ("conv_transpose2d weight rows", lambda: ops.conv_transpose2d(x, np.zeros((3, 3, 3, 3), np.float32)), ValueError,
     "weight.shape[0]"),
    ("conv_transpose2d groups", lambda: ops.conv_transpose2d(x, wt, groups=3), ValueError, "divisible by groups"),
    ("conv_transpose2d output_padding", lambda: ops.conv_transpose2d(x, wt, stride=2, output_padding=2), ValueError,
     "output_padding"),
    ("conv_transpose2d stride 0", lambda: ops.conv_transpose2d(x, wt, stride=0), ValueError, "stride must be >= 1"),
    ("conv_transpose2d negative padding", lambda: ops.conv_transpose2d(x, wt, padding=-1), ValueError, "padding"),
    ("conv_transpose2d empty output", lambda: ops.conv_transpose2d(np.zeros((1, 4, 1, 1), np.float32),
                                                                   np.zeros((4, 2, 1, 1), np.float32), padding=1),
     ValueError, "empty"),
    ("conv_transpose2d bias length", lambda: ops.conv_transpose2d(x, wt, np.zeros(4, np.float32)), ValueError, "bias"),
    ("conv_transpose2d_backward dy shape", lambda: ops.conv_transpose2d_backward(x, x, wt), ValueError,
     "dy must have shape"),
    # ---- pooling
    ("max_pool2d int32", lambda: ops.max_pool2d(x.astype(np.int32), 2), TypeError, "x must have dtype"),
    ("max_pool2d float16", lambda: ops.max_pool2d(x.astype(np.float16), 2), TypeError, "x must have dtype"),
    ("max_pool2d rank 5", lambda: ops.max_pool2d(x[None], 2), ValueError, "x must be 4-D"),
    ("max_pool2d non-contiguous", lambda: ops.max_pool2d(x[:, :, ::2], 2), ValueError, "C-contiguous"),
    ("max_pool2d empty batch", lambda: ops.max_pool2d(np.zeros((0, 4, 6, 6), np.float32), 2), ValueError,
     "x must not be empty"),
    ("max_pool2d padding > half kernel", lambda: ops.max_pool2d(x, 2, padding=2), ValueError,
     "padding (2) must be at most half the kernel size (2)"),
    ("max_pool2d kernel larger than input", lambda: ops.max_pool2d(x, 7), ValueError, "empty"),
    ("max_pool2d kernel 0", lambda: ops.max_pool2d(x, 0), ValueError, "kernel_size must be >= 1"),
    ("max_pool2d stride 0", lambda: ops.max_pool2d(x, 2, stride=0), ValueError, "stride must be >= 1"),
    ("max_pool2d negative padding", lambda: ops.max_pool2d(x, 3, padding=-1), ValueError, "padding must be >= 0"),
    ("max_pool2d dilation 0", lambda: ops.max_pool2d(x, 2, dilation=0), ValueError, "dilation must be >= 1"),
    ("max_pool2d ceil_mode", lambda: ops.max_pool2d(x, 2, ceil_mode="yes"), TypeError, "ceil_mode must be a bool"),
    ("max_pool2d list", lambda: ops.max_pool2d(x.tolist(), 2), TypeError, "x must be a numpy"),
    ("max_pool2d_backward indices int32", lambda: ops.max_pool2d_backward(xp, idx.astype(np.int32), x.shape),
     TypeError, "indices must have dtype int64"),
    ("max_pool2d_backward indices shape", lambda: ops.max_pool2d_backward(xp, idx[:, :, :2].copy(), x.shape),
     ValueError, "indices must have the shape of dy"),
    ("max_pool2d_backward x_shape", lambda: ops.max_pool2d_backward(xp, idx, (3, 4, 6, 6)), ValueError, "x_shape"),
    ("max_pool2d_backward index too large", lambda: ops.max_pool2d_backward(xp, _bad_index(36), x.shape), ValueError,
     "outside the input plane"),
    ("max_pool2d_backward negative index", lambda: ops.max_pool2d_backward(xp, _bad_index(-1, -1), x.shape),
     ValueError, "outside the input plane"),
    ("avg_pool2d int32", lambda: ops.avg_pool2d(x.astype(np.int32), 2), TypeError, "x must have dtype"),
    ("avg_pool2d padding > half kernel", lambda: ops.avg_pool2d(x, 3, padding=2), ValueError, "at most half"),
    ("avg_pool2d divisor 0", lambda: ops.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    ("avg_pool2d divisor float", lambda: ops.avg_pool2d(x, 2, divisor_override=1.5), TypeError, "divisor_override"),
    ("avg_pool2d kernel larger than input", lambda: ops.avg_pool2d(x, (7, 2)), ValueError, "empty"),
    ("avg_pool2d_backward dy shape", lambda: ops.avg_pool2d_backward(x, x.shape, 2), ValueError, "dy must have shape"),
    ("sum_pool2d padding > half kernel", lambda: ops.sum_pool2d(x, 2, padding=(0, 2)), ValueError, "at most half"),
    ("sum_pool2d_backward dy shape", lambda: ops.sum_pool2d_backward(xp, x.shape, 3), ValueError, "dy must have shape"),
    # ---- unpooling
    ("max_unpool2d negative index", lambda: ops.max_unpool2d(xp, _bad_index(-1), 2), ValueError,
     "outside the output plane"),
    ("max_unpool2d index too large", lambda: ops.max_unpool2d(xp, _bad_index(36, -1), 2), ValueError,
     "outside the output plane"),
    ("max_unpool2d indices int32", lambda: ops.max_unpool2d(xp, idx.astype(np.int32), 2), TypeError,
     "indices must have dtype int64"),
    ("max_unpool2d indices shape", lambda: ops.max_unpool2d(xp, idx[:1].copy(), 2), ValueError,
     "indices must have the shape of x"),
    ("max_unpool2d output_size", lambda: ops.max_unpool2d(xp, idx, 2, output_size=(9, 6)), ValueError, "output_size"),
    ("max_unpool2d x float16", lambda: ops.max_unpool2d(xp.astype(np.float16), idx, 2), TypeError, "x must have dtype"),
    ("max_unpool2d_backward negative index", lambda: ops.max_unpool2d_backward(x, _bad_index(-5)), ValueError,
     "outside the output plane"),
    ("max_unpool2d_backward batch", lambda: ops.max_unpool2d_backward(x[:1].copy(), idx), ValueError, "indices"),
    # ---- dropout
    ("dropout p > 1", lambda: ops.dropout(x, 1.5, 0), ValueError, "p must be in [0, 1]"),
    ("dropout p < 0", lambda: ops.dropout(x, -0.1, 0), ValueError, "p must be in [0, 1]"),
    ("dropout p nan", lambda: ops.dropout(x, float("nan"), 0), ValueError, "p must be in [0, 1]"),
    ("dropout p string", lambda: ops.dropout(x, "0.5", 0), TypeError, "p must be a float"),
    ("dropout p bool", lambda: ops.dropout(x, True, 0), TypeError, "p must be a float"),
    ("dropout p None", lambda: ops.dropout(x, None, 0), TypeError, "p must be a float"),
    ("dropout seed negative", lambda: ops.dropout(x, 0.5, -1), ValueError, "seed"),
    ("dropout seed too large", lambda: ops.dropout(x, 0.5, 2**64), ValueError, "seed"),
    ("dropout seed float", lambda: ops.dropout(x, 0.5, 1.0), TypeError, "seed must be an int"),
    ("dropout offset negative", lambda: ops.dropout(x, 0.5, 0, -3), ValueError, "offset"),
    ("dropout x int32", lambda: ops.dropout(x.astype(np.int32), 0.5, 0), TypeError, "x must have dtype"),
    ("dropout x list", lambda: ops.dropout([1.0, 2.0], 0.5, 0), TypeError, "x must be a numpy"),
    ("dropout x empty", lambda: ops.dropout(np.zeros((0, 3), np.float32), 0.5, 0), ValueError, "x must not be empty"),
    ("dropout non-contiguous", lambda: ops.dropout(x[:, :, ::2], 0.5, 0), ValueError, "C-contiguous"),
    ("dropout_backward mask dtype", lambda: ops.dropout_backward(x, mask.astype(np.float32), 0.5), TypeError,
     "mask must have dtype uint8"),
    ("dropout_backward mask shape", lambda: ops.dropout_backward(x, mask[:1].copy(), 0.5), ValueError,
     "mask must have the shape of dy"),
    ("dropout_backward p", lambda: ops.dropout_backward(x, mask, 2.0), ValueError, "p must be in [0, 1]"),
    ("philox counter length", lambda: ops.philox4x32_10((1, 2, 3), (0, 0)), TypeError, "philox4x32_10"),
    ("philox key overflow", lambda: ops.philox4x32_10((0, 0, 0, 0), (2**32, 0)), TypeError, "philox4x32_10"),
    # ---- pyramids
    ("pyr_down int32", lambda: ops.pyr_down(x.astype(np.int32)), TypeError, "x must have dtype"),
    ("pyr_down rank 3", lambda: ops.pyr_down(x[0]), ValueError, "x must be 4-D"),
    ("pyr_down border", lambda: ops.pyr_down(x, border="constant"), ValueError, "border"),
    ("pyr_down empty", lambda: ops.pyr_down(np.zeros((2, 0, 6, 6))), ValueError, "x must not be empty"),
    ("pyr_down_backward dy shape", lambda: ops.pyr_down_backward(x, x.shape), ValueError, "dy must have shape"),
    ("pyr_up output_size too large", lambda: ops.pyr_up(x, output_size=(14, 12)), ValueError, "output_size"),
    ("pyr_up output_size length", lambda: ops.pyr_up(x, output_size=(12,)), ValueError, "output_size"),
    ("pyr_up non-contiguous", lambda: ops.pyr_up(x[:, :, ::2]), ValueError, "C-contiguous"),
    ("pyr_up_backward dy shape", lambda: ops.pyr_up_backward(x, x.shape), ValueError, "output_size"),
    ("pyr_up_backward batch", lambda: ops.pyr_up_backward(np.zeros((1, 4, 12, 12), np.float32), x.shape), ValueError,
     "x_shape"),
    # ---- warp_affine
    ("warp_affine theta shape", lambda: ops.warp_affine(x, np.zeros((2, 3, 3), np.float32)), ValueError,
     "theta must have shape"),
    ("warp_affine theta batch", lambda: ops.warp_affine(x, np.zeros((1, 2, 3), np.float32)), ValueError,
     "theta must have shape"),
    ("warp_affine theta rank", lambda: ops.warp_affine(x, np.zeros((2, 6), np.float32)), ValueError,
     "theta must be 3-D"),
    ("warp_affine theta dtype", lambda: ops.warp_affine(x, theta.astype(np.float64)), TypeError,
     "theta must have the dtype of x"),
    ("warp_affine x float16", lambda: ops.warp_affine(x.astype(np.float16), theta), TypeError, "x must have dtype"),
    ("warp_affine mode", lambda: ops.warp_affine(x, theta, mode="bicubic"), ValueError, "mode"),
    ("warp_affine padding_mode", lambda: ops.warp_affine(x, theta, padding_mode="wrap"), ValueError, "padding_mode"),
    ("warp_affine align_corners", lambda: ops.warp_affine(x, theta, align_corners=1), TypeError, "align_corners"),
    ("warp_affine output_size 0", lambda: ops.warp_affine(x, theta, output_size=(0, 3)), ValueError, "output_size"),
    ("warp_affine theta list", lambda: ops.warp_affine(x, theta.tolist()), TypeError, "theta must be a numpy"),
]


@pytest.mark.parametrize("call,exc,fragment", [pytest.param(c, e, f, id=n) for n, c, e, f in BAD_CALLS])
def test_malformed_call_raises_naming_the_argument(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value), f"message {str(info.value)!r} does not mention {fragment!r}"


_REPLAY = """
import sys
from tests.ops.test_bad_input import BAD_CALLS
for name, call, exc, fragment in BAD_CALLS:
    print(name, flush=True)
    try:
        call()
    except (ValueError, TypeError):
        continue
    print("DID NOT RAISE:", name, flush=True)
    sys.exit(3)
print("done", flush=True)
"""


def _child(code, timeout=60):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_malformed_calls_never_crash_the_interpreter():
    out = _child(_REPLAY)
    last = out.stdout.strip().splitlines()[-1:] or ["<nothing>"]
    assert out.returncode == 0, (f"child exited with {out.returncode} (negative: killed by a signal) "
                                 f"after {last[0]!r}\n{out.stderr[-2000:]}")
    assert last == ["done"]


# ---------------------------------------------------------------- raw bindings
# Arguments that disagree with each other, handed straight to striate._cpu (which normally only
# sees what striate.ops validated). Each must raise ValueError/TypeError, never crash.
f32, f64 = np.float32, np.float64


def _z(shape, dtype=f32):
    return np.zeros(shape, dtype)


def _readonly(shape):
    a = _z(shape)
    a.flags.writeable = False
    return a


RAW_CALLS = {
    "pad2d_forward y shape": lambda: _cpu.pad2d_forward(_z((2, 4, 7, 7)), x, 1, 1, 1, 1, 0, 0.0),
    "pad2d_forward y dtype": lambda: _cpu.pad2d_forward(_z((2, 4, 8, 8), f64), x, 1, 1, 1, 1, 0, 0.0),
    "pad2d_forward negative pad": lambda: _cpu.pad2d_forward(_z((2, 4, 6, 6)), x, -1, 1, 0, 0, 0, 0.0),
    "pad2d_forward read-only y": lambda: _cpu.pad2d_forward(_readonly(x.shape), x, 0, 0, 0, 0, 0, 0.0),
    "pad2d_backward dy shape": lambda: _cpu.pad2d_backward(_z(x.shape), _z((2, 4, 5, 5)), 1, 1, 1, 1, 0),
    "conv2d_forward y channels": lambda: _cpu.conv2d_forward(_z((2, 5, 4, 4)), x, w, None, (1, 1), (0, 0), (1, 1), 1),
    "conv2d_forward y extent": lambda: _cpu.conv2d_forward(_z((2, 6, 9, 9)), x, w, None, (1, 1), (0, 0), (1, 1), 1),
    "conv2d_forward weight channels": lambda: _cpu.conv2d_forward(_z((2, 6, 4, 4)), x, _z((6, 3, 3, 3)), None,
                                                                  (1, 1), (0, 0), (1, 1), 1),
    "conv2d_forward weight dtype": lambda: _cpu.conv2d_forward(_z((2, 6, 4, 4)), x, w.astype(f64), None,
                                                               (1, 1), (0, 0), (1, 1), 1),
    "conv2d_forward bias length": lambda: _cpu.conv2d_forward(_z((2, 6, 4, 4)), x, w, _z(3), (1, 1), (0, 0), (1, 1), 1),
    "conv2d_forward groups 0": lambda: _cpu.conv2d_forward(_z((2, 6, 4, 4)), x, w, None, (1, 1), (0, 0), (1, 1), 0),
    "conv2d_forward stride 0": lambda: _cpu.conv2d_forward(_z((2, 6, 4, 4)), x, w, None, (0, 1), (0, 0), (1, 1), 1),
    "conv2d_forward non-contiguous x": lambda: _cpu.conv2d_forward(_z((2, 6, 1, 4)), x[:, :, ::2], w, None,
                                                                   (1, 1), (0, 0), (1, 1), 1),
    "conv2d_backward dy shape": lambda: _cpu.conv2d_backward(_z(x.shape), None, None, _z((2, 6, 5, 5)), x, w,
                                                             (1, 1), (0, 0), (1, 1), 1),
    "conv2d_backward dw shape": lambda: _cpu.conv2d_backward(None, _z((6, 4, 2, 2)), None, y, x, w,
                                                             (1, 1), (0, 0), (1, 1), 1),
    "conv_transpose2d_forward x channels": lambda: _cpu.conv_transpose2d_forward(_z((2, 3, 8, 8)), _z((2, 5, 6, 6)), wt,
                                                                                 None, (1, 1), (0, 0), (1, 1), 1),
    "conv_transpose2d_forward y extent": lambda: _cpu.conv_transpose2d_forward(_z((2, 3, 30, 30)), x, wt, None,
                                                                               (1, 1), (0, 0), (1, 1), 1),
    "max_pool2d_forward indices dtype": lambda: _cpu.max_pool2d_forward(_z((2, 4, 3, 3)), _z((2, 4, 3, 3), np.int32), x,
                                                                        (2, 2), (2, 2), (0, 0), (1, 1)),
    "max_pool2d_forward y extent": lambda: _cpu.max_pool2d_forward(_z((2, 4, 9, 9)), _z((2, 4, 9, 9), np.int64), x,
                                                                   (2, 2), (2, 2), (0, 0), (1, 1)),
    "max_pool2d_forward stride 0": lambda: _cpu.max_pool2d_forward(_z((2, 4, 3, 3)), _z((2, 4, 3, 3), np.int64), x,
                                                                   (2, 2), (0, 2), (0, 0), (1, 1)),
    "max_pool2d_backward bad index": lambda: _cpu.max_pool2d_backward(_z(x.shape), _z(xp.shape), _bad_index(10**9)),
    "avg_pool2d_forward y extent": lambda: _cpu.avg_pool2d_forward(_z((2, 4, 9, 9)), x, (2, 2), (2, 2), (0, 0),
                                                                   True, 0),
    "avg_pool2d_backward dy extent": lambda: _cpu.avg_pool2d_backward(_z(x.shape), _z((2, 4, 9, 9)), (2, 2), (2, 2),
                                                                      (0, 0), True, 0),
    "max_unpool2d_forward indices shape": lambda: _cpu.max_unpool2d_forward(_z(x.shape), xp, idx[:1].copy()),
    "max_unpool2d_forward bad index": lambda: _cpu.max_unpool2d_forward(_z(x.shape), xp, _bad_index(-(2**62))),
    "max_unpool2d_backward dy dtype": lambda: _cpu.max_unpool2d_backward(_z(xp.shape), _z(x.shape, f64), idx),
    "dropout_forward mask shape": lambda: _cpu.dropout_forward(_z(x.shape), _z((3,), np.uint8), x, 1, 0, 0.5, 2.0),
    "dropout_forward mask dtype": lambda: _cpu.dropout_forward(_z(x.shape), _z(x.shape, np.int8), x, 1, 0, 0.5, 2.0),
    "dropout_forward p": lambda: _cpu.dropout_forward(_z(x.shape), _z(x.shape, np.uint8), x, 1, 0, 1.5, 2.0),
    "dropout_backward mask shape": lambda: _cpu.dropout_backward(_z(x.shape), x, _z((2, 4), np.uint8), 2.0),
    "pyr_down_forward y shape": lambda: _cpu.pyr_down_forward(_z((2, 4, 2, 2)), x),
    "pyr_down_backward dy shape": lambda: _cpu.pyr_down_backward(_z(x.shape), _z((2, 4, 6, 6))),
    "pyr_up_forward y width": lambda: _cpu.pyr_up_forward(_z((2, 2, 8, 2)), _z((2, 2, 4, 3000))),
    "pyr_up_forward y height": lambda: _cpu.pyr_up_forward(_z((2, 2, 2, 8)), _z((2, 2, 3000, 4))),
    "pyr_up_backward dy shape": lambda: _cpu.pyr_up_backward(_z((2, 2, 4, 3000)), _z((2, 2, 8, 2))),
    "warp_affine_forward theta shape": lambda: _cpu.warp_affine_forward(_z(x.shape), x, _z((2, 3, 2)), 0, 0, False),
    "warp_affine_forward mode": lambda: _cpu.warp_affine_forward(_z(x.shape), x, theta, 5, 0, False),
    "warp_affine_forward y batch": lambda: _cpu.warp_affine_forward(_z((1, 4, 6, 6)), x, theta, 0, 0, False),
}

_RAW_CHILD = """
import sys
from tests.ops.test_bad_input import RAW_CALLS
try:
    RAW_CALLS[{name!r}]()
except (ValueError, TypeError) as exc:
    print("raised:", type(exc).__name__, exc)
    sys.exit(0)
print("DID NOT RAISE")
sys.exit(3)
"""


@pytest.mark.parametrize("name", list(RAW_CALLS))
def test_raw_binding_rejects_inconsistent_arguments(name):
    out = _child(_RAW_CHILD.format(name=name))
    assert out.returncode >= 0, f"{name}: the interpreter was killed by signal {-out.returncode}\n{out.stderr[-2000:]}"
    assert out.returncode == 0, f"{name}: {out.stdout.strip()} {out.stderr[-2000:]}"
