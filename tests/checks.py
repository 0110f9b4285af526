"""Comparison and gradient-check helpers shared by the op tests.

assert_close follows llm.c's validate_result: |actual - expected| <= atol + rtol * |expected|,
with NaN matching NaN and infinities matching exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

DTYPES = (np.float32, np.float64)

# (atol, rtol) for results of order 1 computed from a few dozen terms.
TOL = {np.dtype(np.float32): (2e-5, 2e-5), np.dtype(np.float64): (1e-12, 1e-10)}


def tol(dtype, scale: float = 1.0):
    atol, rtol = TOL[np.dtype(dtype)]
    return atol * scale, rtol * scale


def assert_close(actual, expected, atol, rtol, what="result"):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(e)
    with np.errstate(invalid="ignore"):
        ok = (a == e) | both_nan | (np.abs(a - e) <= atol + rtol * np.abs(e))
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(bad[0])
        with np.errstate(invalid="ignore"):
            err = np.where(ok, 0.0, np.abs(a - e))
        raise AssertionError(
            f"{what}: {len(bad)} of {a.size} elements differ (atol={atol:g}, rtol={rtol:g}); "
            f"first at {first}: got {a[first]!r}, expected {e[first]!r}; "
            f"max error {np.nanmax(err):.3g}"
        )


def sample_configs(count, seed, draw, max_attempts=50):
    """`count` pytest params drawn by rejection sampling from one default_rng(seed).

    draw(rng, attempt, index) returns (cfg, id), or None to reject the draw; attempt counts
    the calls from 1, index is how many configs were accepted so far. Spaces are dropped from
    the ids. More than max_attempts * count calls means the generator is stuck.
    """
    rng = np.random.default_rng(seed)
    out = []
    attempt = 0
    while len(out) < count:
        attempt += 1
        assert attempt < max_attempts * count, "config generator is stuck"
        drawn = draw(rng, attempt, len(out))
        if drawn is not None:
            cfg, cid = drawn
            out.append(pytest.param(cfg, id=cid.replace(" ", "")))
    return out


def random_array(rng, shape, dtype=np.float64):
    return np.ascontiguousarray(rng.standard_normal(shape).astype(dtype))


def tie_free(rng, shape, dtype=np.float64, gap=1e-2):
    """Distinct values at least `gap` apart (a shuffled arithmetic ramp), for max-pool checks."""
    n = int(np.prod(shape))
    values = (np.arange(n) - n / 2) * gap
    return np.ascontiguousarray(rng.permutation(values).reshape(shape).astype(dtype))


def numerical_grad(f, x, g, eps=1e-6):
    """Central-difference gradient of sum(f(x) * g) with respect to x (float64, x is perturbed in place)."""
    assert x.dtype == np.float64 and x.flags.c_contiguous
    grad = np.empty_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        plus = float(np.sum(f(x) * g))
        flat[i] = orig - eps
        minus = float(np.sum(f(x) * g))
        flat[i] = orig
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def assert_adjoint(forward, backward, x, g, rtol=1e-12):
    """Dot-product test <A x, g> == <x, A^T g> for a linear map A."""
    lhs = float(np.sum(forward(x) * g))
    rhs = float(np.sum(x * backward(g)))
    scale = float(np.sum(np.abs(forward(x) * g))) + float(np.sum(np.abs(x * backward(g))))
    assert abs(lhs - rhs) <= rtol * max(scale, 1e-300), f"<Ax, g> = {lhs!r} but <x, A^T g> = {rhs!r}"


# ------------------------------------------------------------------ conv2d / conv_transpose2d
# cfg has "x" and "w" shapes and a "bias" flag; op(x, w, b, **geo) is the forward and
# op_backward(g, x, w, **geo, needs=...) returns (dx, dw, db).


def conv_arrays(cfg, out_channels, dtype, seed):
    """x, w and (when cfg["bias"]) a bias of out_channels, drawn in that order from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    x = random_array(rng, cfg["x"], dtype)
    w = random_array(rng, cfg["w"], dtype)
    b = random_array(rng, (out_channels,), dtype) if cfg["bias"] else None
    return x, w, b


def assert_conv_matches(op, op_backward, geo, x, w, b, g, expected):
    """Forward and all three gradients in every dtype against float64 results expected["y"],
    ["dx"], ["dw"], ["db"] for the float64 inputs x, w, b and output gradient g. Without a bias
    db must still be g summed over (N, H, W)."""
    for dtype in DTYPES:
        xd, wd, bd, gd = (None if v is None else v.astype(dtype) for v in (x, w, b, g))
        atol, rtol = tol(dtype, 20)
        assert_close(op(xd, wd, bd, **geo), expected["y"], atol, rtol, "y")
        dx, dw, db = op_backward(gd, xd, wd, **geo)
        assert dx.dtype == dw.dtype == db.dtype == dtype
        assert_close(dx, expected["dx"], atol, rtol, "dx")
        assert_close(dw, expected["dw"], atol, rtol, "dw")
        assert_close(db, g.sum(axis=(0, 2, 3)) if b is None else expected["db"], atol, rtol, "db")


def assert_conv_numerical_gradients(op, op_backward, geo, x, w, b, seed):
    """dx, dw (and db with a bias) against central differences, for an output gradient from seed."""
    g = random_array(np.random.default_rng(seed), op(x, w, b, **geo).shape)
    dx, dw, db = op_backward(g, x, w, **geo)
    assert_close(dx, numerical_grad(lambda v: op(v, w, b, **geo), x, g), 1e-7, 1e-6, "dx")
    assert_close(dw, numerical_grad(lambda v: op(x, v, b, **geo), w, g), 1e-7, 1e-6, "dw")
    if b is not None:
        assert_close(db, numerical_grad(lambda v: op(x, w, v, **geo), b, g), 1e-7, 1e-6, "db")


def assert_needs_selects_outputs(op, op_backward, geo, x, w):
    """needs=(dx, dw, db) flags: the wanted gradients equal the full call's, the others are None."""
    g = np.ones(op(x, w, **geo).shape, x.dtype)
    full = op_backward(g, x, w, **geo)
    for needs in ((True, False, False), (False, True, False), (False, False, True)):
        part = op_backward(g, x, w, **geo, needs=needs)
        for want, got, exp in zip(needs, part, full):
            if want:
                assert_close(got, exp, 0, 0)
            else:
                assert got is None


def cli_error(argv) -> str:
    """The one-line message ``striate.cli.main`` exits with for bad input (status 1: SystemExit
    with a str starting ``striate: error:``)."""
    from striate import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    message = exc.value.code
    assert isinstance(message, str) and "\n" not in message and message.startswith("striate: error: ")
    return message
