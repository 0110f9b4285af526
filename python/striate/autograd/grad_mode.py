"""Whether operations record the graph: ``no_grad`` and ``enable_grad``."""
from __future__ import annotations

import threading

_local = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_local, "enabled", True)


def set_grad_enabled(mode: bool) -> None:
    _local.enabled = bool(mode)


class no_grad:
    """Context manager (and decorator) that disables graph recording."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)
        return self

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):
    """Context manager that re-enables graph recording inside ``no_grad``."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)
        return self
