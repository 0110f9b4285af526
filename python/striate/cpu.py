"""``striate.cpu``: the CPU buffer cache behind numpy arrays.

When striate is imported it makes its caching allocator (csrc/cpu/allocator.cpp)
numpy's data allocator in the importing thread, as PyTorch's caching allocator
serves CUDA tensors: a freed block of 256 KiB or more goes to a free list of
its size class (four classes per power of two) and the next array of that
class reuses it. A training loop allocates the same shapes every step, so from
the second step on its activations and gradients land in pages that are
already mapped instead of paying for fresh ones (page faults and zeroing cost
0.2-0.5 ms per MB on a typical server). Blocks of 4 MiB and more are 2 MiB
aligned and advised for transparent huge pages.

The free lists hold at most :func:`get_cache_limit` bytes (default: a quarter
of the host's memory, at most 4 GiB; ``STRIATE_CPU_CACHE_LIMIT`` in bytes sets
it at import); :func:`empty_cache` gives them back to the system. Set
``STRIATE_CPU_CACHE=0`` before importing striate to keep numpy's own allocator.
Arrays remember the allocator that made them, so mixing is safe.
"""
from __future__ import annotations

import os

from ._backend import _cpu  # _backend loads it (and sets up OpenMP) first

DEFAULT_LIMIT_CAP = 4 << 30
_installed = False


def _default_limit() -> int:
    text = os.environ.get("STRIATE_CPU_CACHE_LIMIT")
    if text is not None:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise ValueError(f"STRIATE_CPU_CACHE_LIMIT must be a byte count >= 0, got {text!r}")
        return value
    try:
        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        host = 4 * DEFAULT_LIMIT_CAP
    return min(DEFAULT_LIMIT_CAP, host // 4)


def _install() -> None:
    """Called once by ``import striate``: installs the cache unless STRIATE_CPU_CACHE=0."""
    global _installed
    if os.environ.get("STRIATE_CPU_CACHE", "1").strip() in ("0", "off", "false", "no"):
        return
    _cpu.set_buffer_cache_limit(_default_limit())
    _cpu.install_buffer_cache()
    _installed = True


def cache_enabled() -> bool:
    """True when striate's cache is numpy's allocator (in the thread that imported striate)."""
    return _installed


def empty_cache() -> None:
    """Give every cached (free) block back to the system; live arrays are untouched."""
    _cpu.empty_buffer_cache()


def set_cache_limit(nbytes: int) -> None:
    """Hold at most ``nbytes`` of free blocks (0 disables caching; lowering it empties the cache)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"set_cache_limit: nbytes must be an int >= 0, got {nbytes!r}")
    _cpu.set_buffer_cache_limit(nbytes)


def get_cache_limit() -> int:
    return int(_cpu.buffer_cache_stats()["limit_bytes"])


def memory_stats() -> dict:
    """Counters of the cache: ``cached_bytes``/``cached_blocks`` (free, held), ``allocated_bytes``
    (live blocks of cacheable size), ``hits``/``misses`` (cacheable allocations served from the
    free lists / from the system) and ``limit_bytes``."""
    return dict(_cpu.buffer_cache_stats())


__all__ = ["cache_enabled", "empty_cache", "set_cache_limit", "get_cache_limit", "memory_stats"]
