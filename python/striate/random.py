"""Global random state: ``manual_seed`` seeds every generator striate uses.

* initialisation and ``rand``/``randn``: a numpy ``Generator`` (PCG64);
* dropout: a Philox key (``seed``) and a counter ``offset`` that advances by
  one per dropout call, handed to the Philox kernels (identical on CPU/GPU);
* data order: loaders draw their permutations from :func:`generator`.

Seeding the same value reproduces a run bit for bit.
"""
from __future__ import annotations

import numpy as np

_DEFAULT_SEED = 0x5EED


class _State:
    def __init__(self, seed: int):
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.dropout_offset = 0


_state = _State(_DEFAULT_SEED)


def manual_seed(seed: int) -> None:
    """Seed initialisation, ``rand``/``randn``, dropout and data order."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"manual_seed: seed must be an int in [0, 2**63), got {seed!r}")
    global _state
    _state = _State(int(seed))


def generator() -> np.random.Generator:
    """The numpy Generator behind initialisation and data order."""
    return _state.rng


def next_dropout_stream() -> tuple[int, int]:
    """(seed, offset) for the next dropout call; the offset then advances."""
    offset = _state.dropout_offset
    _state.dropout_offset += 1
    return _state.seed, offset


def get_rng_state() -> dict:
    """The whole random state as plain values (for checkpoints)."""
    return {"seed": _state.seed, "dropout_offset": _state.dropout_offset,
            "bit_generator": _state.rng.bit_generator.state}


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    global _state
    s = _State(int(state["seed"]))
    s.dropout_offset = int(state["dropout_offset"])
    s.rng.bit_generator.state = state["bit_generator"]
    _state = s
