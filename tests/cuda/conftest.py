"""Shared set-up for the GPU tests in tests/cuda.

Every test here needs a usable GPU: striate built with CUDA (``striate._cuda``),
CuPy importable and at least one device (``striate.cuda.is_available()``).
Without one the test is skipped; with ``STRIATE_REQUIRE_CUDA=1`` (set by
benchmarks/gpu_check.sh on a GPU machine) a missing GPU is a failure instead,
so a broken build cannot pass as "all skipped".

Use either the helper or the fixture::

    from tests.cuda.conftest import cupy_or_skip

    def test_something():
        cp = cupy_or_skip()
        ...

    def test_other(cp):          # the same, as a fixture
        ...
"""
from __future__ import annotations

import os

import pytest

import striate


def _why_unavailable() -> str:
    from striate import _backend

    if not _backend.cuda_built():
        return "striate was built without CUDA (no striate._cuda)"
    if _backend._cupy is None:
        return "CuPy cannot be imported"
    return "no CUDA device (striate._cuda.device_count() == 0)"


def cupy_or_skip():
    """Return the ``cupy`` module, or skip the test (fail under STRIATE_REQUIRE_CUDA=1)."""
    if not striate.cuda.is_available():
        reason = _why_unavailable()
        if os.environ.get("STRIATE_REQUIRE_CUDA") == "1":
            pytest.fail(f"STRIATE_REQUIRE_CUDA=1 but no usable GPU: {reason}", pytrace=False)
        pytest.skip(f"no usable GPU: {reason}")
    import cupy

    return cupy


@pytest.fixture
def cp():
    """The ``cupy`` module; skips without a usable GPU (fails under STRIATE_REQUIRE_CUDA=1).

    Synchronizes the device after the test so an asynchronous kernel error is
    reported by the test that caused it.
    """
    mod = cupy_or_skip()
    yield mod
    mod.cuda.get_current_stream().synchronize()
