"""Argument helpers shared by the layers: ``_pair`` as in ``torch.nn.modules.utils``."""
from __future__ import annotations


def _pair(value) -> tuple:
    """``3`` -> ``(3, 3)``; a pair (or any iterable) -> a tuple of it."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value, value)

