"""The STRIATE_REQUIRE_REFERENCE policy of tests/conftest.py: skip, or fail under CI."""
import pytest

from tests.conftest import require

MISSING = "striate_no_such_reference_package"


def test_missing_reference_skips_by_default(monkeypatch):
    monkeypatch.delenv("STRIATE_REQUIRE_REFERENCE", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(MISSING)


def test_missing_reference_fails_when_required(monkeypatch):
    monkeypatch.setenv("STRIATE_REQUIRE_REFERENCE", "1")
    with pytest.raises(pytest.fail.Exception, match=MISSING):
        require(MISSING)


def test_present_reference_is_returned(monkeypatch):
    monkeypatch.setenv("STRIATE_REQUIRE_REFERENCE", "1")
    assert require("numpy").__name__ == "numpy"
