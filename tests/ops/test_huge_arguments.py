"""Huge integer arguments: each reproducer of issue 13 raises a clear ValueError/TypeError naming
the op, quickly, instead of writing out of bounds, wrapping a size, or looping for hours.

The cases run in one child interpreter (a crash there fails every case instead of killing the
test run; a hang is caught by the timeout). The shape.h formulas are also called directly at the
edges of int64: they answer -1 (overflow) instead of a wrapped number.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import striate.ops as ops
from striate import _cpu

ROOT = Path(__file__).resolve().parents[2]
BIG = 2**63 - 1

# name -> (expression evaluated in the child, exception type, fragment of the message)
CASES = {
    "conv2d stride 2**63-1 (heap overflow in im2col)": (
        "ops.conv2d(np.ones((1, 1, 1, 5)), np.ones((1, 1, 3, 5)), stride=2**63 - 1, padding=2)",
        "ValueError", "conv2d: stride must be at most 2147483647"),
    "nn.Conv2d stride 2**63-1": (
        "nn.Conv2d(1, 1, (3, 5), stride=2**63 - 1, padding=2)(st.tensor(np.ones((1, 1, 1, 5), np.float32)))",
        "ValueError", "conv2d: stride"),
    "conv2d reflect stride 2**63-1 (wrong sum)": (
        "ops.conv2d(np.ones((1, 1, 3, 5)), np.ones((1, 1, 3, 3)), stride=2**63 - 1, padding=1, "
        "padding_mode='reflect')", "ValueError", "conv2d: stride"),
    "conv_transpose2d stride 2**63-1": (
        "ops.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), stride=2**63 - 1)",
        "ValueError", "conv_transpose2d: stride"),
    "conv_transpose2d padding 2**63-1": (
        "ops.conv_transpose2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), padding=2**63 - 1)",
        "ValueError", "conv_transpose2d: padding"),
    "conv_transpose2d_backward dilation 2**62": (
        "ops.conv_transpose2d_backward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), "
        "np.ones((1, 1, 2, 2)), dilation=2**62)", "ValueError", "conv_transpose2d_backward: dilation"),
    "max_pool2d kernel 2**40 ceil_mode (kernel loop)": (
        "ops.max_pool2d(np.ones((1, 1, 4, 4)), kernel_size=2**40, ceil_mode=True)",
        "ValueError", "max_pool2d: kernel_size must be at most"),
    "max_pool2d kernel 2**40 padding 2**39 (validation loop)": (
        "ops.max_pool2d(np.ones((1, 1, 4, 4)), kernel_size=2**40, padding=2**39)",
        "ValueError", "max_pool2d: kernel_size"),
    "avg_pool2d_backward x_shape 2**40 (validation loop)": (
        "ops.avg_pool2d_backward(np.ones((1, 1, 2, 2)), (1, 1, 2**40, 2**40), 2, stride=1)",
        "ValueError", "avg_pool2d_backward: dy must have shape"),
    "max_pool2d kernel 2**31-1 on a 4x4 input (clipped window)": (
        "float(ops.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2**31 - 1, ceil_mode=True)[0].sum())",
        None, "15.0"),
    "max_pool2d dilation 2**31-1": (
        "ops.max_pool2d(np.ones((1, 1, 4, 4)), 2, dilation=2**31 - 1)",
        "ValueError", "max_pool2d: the output would be empty"),
    "max_pool2d kernel 2**64 (int beyond int64)": (
        "ops.max_pool2d(np.ones((1, 1, 4, 4)), kernel_size=2**64)", "ValueError",
        "max_pool2d: kernel_size must be at most"),
    "avg_pool2d stride -2**63": (
        "ops.avg_pool2d(np.ones((1, 1, 4, 4)), 2, stride=-2**63)", "ValueError",
        "avg_pool2d: stride must be >= 1"),
    "sum_pool2d names itself": (
        "ops.sum_pool2d(np.ones((1, 1, 4, 4)), kernel_size=0)", "ValueError", "sum_pool2d: kernel_size"),
    "sum_pool2d_backward names itself": (
        "ops.sum_pool2d_backward(np.ones((1, 1, 3, 3)), (1, 1, 4, 4), 2)", "ValueError",
        "sum_pool2d_backward: dy must have shape"),
    "pad2d value 'a'": (
        "ops.pad2d(np.ones((1, 1, 4, 4)), (1, 1, 1, 1), value='a')", "TypeError",
        "pad2d: value must be a real number, got 'a'"),
    "pad2d pad 2**63": (
        "ops.pad2d(np.ones((1, 1, 4, 4)), (0, 2**63, 0, 0))", "ValueError", "pad2d: pad must be at most"),
    "max_unpool2d output of 2**62 cells (size limit)": (
        "ops.max_unpool2d(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), 2**31 - 1)",
        "ValueError", "max_unpool2d: the output (1, 1, 2147483647, 2147483647) (float64) would need"),
    "max_pool2d_backward x_shape 2**40 (size limit)": (
        "ops.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.zeros((1, 1, 2, 2), np.int64), "
        "(1, 1, 2**40, 2**40))", "ValueError", "max_pool2d_backward: the output"),
    "pyr_down_backward x_shape 2**62 (size limit)": (
        "ops.pyr_down_backward(np.ones((1, 1, 1, 1)), (1, 1, 2**62, 1))", "ValueError",
        "pyr_down_backward: dy must have shape (1, 1, 2305843009213693952, 1)"),
    "dropout seed 2**64": (
        "ops.dropout(np.ones(4), 0.5, 2**64)", "ValueError", "dropout: seed must be in [0, 2**64)"),
    "warp_affine output_size 2**31": (
        "ops.warp_affine(np.ones((1, 1, 4, 4)), np.zeros((1, 2, 3)), output_size=(2**31, 1))",
        "ValueError", "warp_affine: output_size must be at most"),
    "raw binding stride 2**62": (
        "_cpu.conv2d_forward(np.empty((1, 1, 1, 1)), np.ones((1, 1, 1, 5)), np.ones((1, 1, 1, 5)), "
        "None, (2**62, 2**62), (0, 0, 0, 0), (1, 1), 1)", "ValueError", "conv2d: stride must be in"),
    "raw binding pool padding 2**62": (
        "_cpu.avg_pool2d_forward(np.empty((1, 1, 1, 1)), np.ones((1, 1, 4, 4)), (2**62, 2**62), "
        "(1, 1), (2**61, 2**61), False, True, 0)", "ValueError", "avg_pool2d: kernel_size must be in"),
}

_CHILD = """
import json, sys, time
import numpy as np
import striate as st
import striate.nn as nn
import striate.ops as ops
from striate import _cpu
cases = json.loads(sys.argv[1])
out = {}
for name, expr in cases.items():
    t = time.perf_counter()
    try:
        value = eval(expr)
        out[name] = [None, repr(value) if isinstance(value, (float, int, str)) else type(value).__name__]
    except Exception as exc:
        out[name] = [[c.__name__ for c in type(exc).__mro__], str(exc)]
    out[name].append(time.perf_counter() - t)
    print(json.dumps({name: out[name]}), flush=True)
"""


@pytest.fixture(scope="module")
def child_results():
    exprs = {name: case[0] for name, case in CASES.items()}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(exprs)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):  # an editable install may print its rebuild first
            results.update(json.loads(line))
    return proc, results


@pytest.mark.parametrize("name", list(CASES))
def test_reproducer_raises_naming_the_op(child_results, name):
    proc, results = child_results
    assert name in results, (f"the child died before this case (rc {proc.returncode}): "
                             f"{proc.stderr[-2000:]}")
    classes, message, seconds = results[name]
    expected_exc, fragment = CASES[name][1], CASES[name][2]
    if expected_exc is None:
        assert classes is None, f"{name}: raised {classes[0]}: {message}"
    else:
        assert classes is not None and expected_exc in classes, f"{name}: got {classes}: {message}"
    assert fragment in message, f"{name}: {message!r} lacks {fragment!r}"
    assert seconds < 30, f"{name} took {seconds:.1f} s"  # a hang guard, not a timing claim


@pytest.mark.parametrize("args", [
    (BIG, 1, 1, BIG, 1), (1, BIG, 1, 0, 2), (BIG, 1, 1, 1, 1), (2**62, 2**62, 1, 0, 4),
])
def test_conv_output_size_reports_overflow(args):
    assert _cpu.conv_output_size(*args) == -1


def test_conv_output_size_near_the_edge_is_exact():
    # span = 2**62 + (2**62 - 1) - 1 fits: no overflow answer, the exact quotient.
    assert _cpu.conv_output_size(2**62, 1, 2**31 - 1, 2**62 - 1, 1) == (2**63 - 2) // (2**31 - 1) + 1
    assert _cpu.conv_output_size(5, 2**40, 1, 0, 1) == 0


@pytest.mark.parametrize("args", [
    (BIG, 2, BIG, 0, 1, 0), (3, BIG, 1, 0, BIG, 0), (3, 1, 1, BIG, 1, 0), (3, 1, 1, 0, 1, BIG),
])
def test_conv_transpose_output_size_reports_overflow(args):
    assert _cpu.conv_transpose_output_size(*args) == -1


def test_conv_transpose_output_size_clamps_negative_to_empty():
    assert _cpu.conv_transpose_output_size(1, 1, 1, 5, 1, 0) == 0
    assert _cpu.conv_transpose_output_size(4, 3, 2, 1, 1, 1) == (4 - 1) * 2 - 2 + 2 + 1 + 1


@pytest.mark.parametrize("args", [
    (BIG, 1, 1, BIG, 1, False), (1, BIG, 1, 0, BIG, False), (BIG, 1, BIG, 0, 1, True),
])
def test_pool_output_size_reports_overflow(args):
    assert _cpu.pool_output_size(*args) == -1


def test_unpool_output_size_reports_overflow_and_clamps():
    assert _cpu.unpool_output_size(BIG, 2, BIG, 0) == -1
    assert _cpu.unpool_output_size(2, BIG, 1, 0) == -1
    assert _cpu.unpool_output_size(1, 1, 1, 5) == 0


def test_pyr_sizes_at_int64_edges():
    assert _cpu.pyr_down_output_size(BIG) == 2**62
    assert not _cpu.pyr_up_size_ok(BIG, BIG)
    assert _cpu.pyr_up_size_ok(3, 7)


def _windows_nonempty_brute(n, out, k, s, p, d):
    return all(any(0 <= o * s - p + a * d < n for a in range(k)) for o in range(out))


def test_pool_windows_nonempty_matches_brute_force():
    # The closed form against the window-by-window definition, over every small geometry
    # that pooling accepts (padding at most half the kernel).
    checked = 0
    for n in range(1, 7):
        for k in range(1, 6):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in range(1, 5):
                        for ceil_mode in (False, True):
                            out = _cpu.pool_output_size(n, k, s, p, d, ceil_mode)
                            assert _cpu.pool_windows_nonempty(n, out, k, s, p, d) == \
                                _windows_nonempty_brute(n, out, k, s, p, d), (n, k, s, p, d, ceil_mode)
                            checked += 1
    assert checked > 1500


def test_pool_windows_nonempty_is_closed_form_for_huge_outputs():
    # 2**40 windows would take hours to walk; the answer is immediate.
    assert _cpu.pool_windows_nonempty(2**40, 2**40, 2**31 - 1, 1, 2**30 - 1, 1)
    assert _cpu.pool_windows_nonempty(2**40, 2**40, 2**31 - 1, 1, 2**30 - 1, 3)
    assert not _cpu.pool_windows_nonempty(4, 3, 2, 1, 3, 1)  # padding above half the kernel


def test_max_pool2d_huge_kernel_matches_a_global_max():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 7))
    k = (2**31 - 1, 2**30)
    y, idx = ops.max_pool2d(x, k, ceil_mode=True)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(y[..., 0, 0], x.max(axis=(2, 3)))
    np.testing.assert_array_equal(idx[..., 0, 0], x.reshape(2, 3, -1).argmax(-1))


def test_convolution_workspace_is_checked_against_memory(monkeypatch):
    # With 1 MiB of "memory" the outputs fit but the im2col scratch (576 x 256 values per
    # thread) does not; a 1x1 stride-1 convolution needs no scratch and runs.
    from striate.ops import _check

    monkeypatch.setattr(_check, "_host_memory_bytes", lambda: 2**20)
    x = np.ones((2, 64, 16, 16))
    with pytest.raises(ops.ArraySizeError, match="conv2d: the im2col workspace would need"):
        ops.conv2d(x, np.ones((8, 64, 3, 3)), padding=1)
    with pytest.raises(ops.ArraySizeError, match="conv2d_backward: the im2col workspace"):
        ops.conv2d_backward(np.ones((2, 8, 16, 16)), x, np.ones((8, 64, 3, 3)), padding=1)
    with pytest.raises(ops.ArraySizeError, match="conv_transpose2d: the im2col workspace"):
        ops.conv_transpose2d(np.ones((2, 8, 16, 16)), np.ones((8, 64, 3, 3)), padding=1)
    assert ops.conv2d(x, np.ones((8, 64, 1, 1))).shape == (2, 8, 16, 16)
