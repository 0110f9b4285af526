"""Comparison and gradient-check helpers shared by the op tests.

assert_close follows llm.c's validate_result: |actual - expected| <= atol + rtol * |expected|,
with NaN matching NaN and infinities matching exactly.
"""
from __future__ import annotations

import numpy as np

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
