"""Shared pytest set-up for the striate suite.

Reference packages (torch, cv2, scikit-image) are optional for a developer:
a test that needs one is skipped when it is missing. CI sets
STRIATE_REQUIRE_REFERENCE=1, under which a missing reference is a failure.
"""
from __future__ import annotations

import importlib
import os

import pytest

import striate

try:  # the fuzz tests' profiles (tests/ops/test_fuzz.py); hypothesis is in the test extra
    from hypothesis import HealthCheck, settings
except ImportError:
    settings = None
if settings is not None:
    _FUZZ = dict(deadline=None, database=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])
    # CI: a few hundred examples per op, the same ones every run.
    settings.register_profile("ci", max_examples=250, derandomize=True, **_FUZZ)
    # --hypothesis-profile=long: 600 fresh random examples per op, over 10,000 in all.
    settings.register_profile("long", max_examples=600, **_FUZZ)
    settings.load_profile("ci")


def require(module_name: str):
    """Import a reference package; skip without it, or fail under STRIATE_REQUIRE_REFERENCE=1."""
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if os.environ.get("STRIATE_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"STRIATE_REQUIRE_REFERENCE=1 but {module_name!r} cannot be imported: {exc}",
                        pytrace=False)
        pytest.skip(f"reference package {module_name!r} is not installed")


@pytest.fixture(scope="session")
def torch():
    mod = require("torch")
    mod.set_num_threads(1)  # tiny shapes: avoid thread start-up noise, results are the same
    return mod


@pytest.fixture(scope="session")
def cv2():
    return require("cv2")


@pytest.fixture(scope="session")
def skimage_data():
    require("skimage")
    return require("skimage.data")


@pytest.fixture(autouse=True)
def _restore_num_threads():
    """Tests may change striate's thread count; put it back afterwards."""
    before = striate.get_num_threads()
    yield
    if striate.get_num_threads() != before:
        striate.set_num_threads(before)
