"""Wall-clock timing shared by every benchmark script.

A measurement warms each callable up, picks a batch size so that one sample
lasts at least ``min_sample_s`` (fast ops are timed over several calls, the
"min-of-batches" style of ``timeit``), then takes ``repeats`` samples with
``time.perf_counter``. When several callables are measured together (striate
and its reference) their samples are interleaved, so that load from other
processes on a shared machine falls on both sides alike. The garbage
collector is off while sampling, as in ``timeit``.
"""
from __future__ import annotations

import gc
import importlib
import math
import statistics
import time
from dataclasses import dataclass, field

MAX_BATCH = 1000  # calls per sample, at most


@dataclass
class Timing:
    """Per-call times of one callable, in milliseconds (None after an error)."""

    median_ms: float | None = None
    min_ms: float | None = None
    batch: int = 0
    samples_ms: list[float] = field(default_factory=list)
    error: str | None = None


def optional_import(name):
    """The module, or None when it is not installed (the reference is then reported as n/a)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# striate first: when it loads OpenMP it gives libgomp its shorter spin before idle threads sleep
# (striate/_backend.py). PyTorch then shares that libgomp (same soname), so both libraries run
# on the same OpenMP runtime and settings whichever order a user imports them in.
import striate  # noqa: E402,F401

torch = optional_import("torch")
cv2 = optional_import("cv2")


def set_threads(n: int) -> None:
    """Use n threads in striate and in every reference library that is installed."""
    import striate

    striate.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    if cv2 is not None:
        cv2.setNumThreads(n)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


def _warm_up(fn, warmup: int, min_sample_s: float, timing: Timing) -> None:
    """Runs fn warmup times (at least once) and sets the batch size from the last call."""
    elapsed = 0.0
    for _ in range(max(1, warmup)):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
    timing.batch = max(1, min(MAX_BATCH, math.ceil(min_sample_s / max(elapsed, 1e-9))))


def measure(fns, repeats: int, warmup: int = 1, min_sample_s: float = 0.02) -> list[Timing | None]:
    """Times each callable in fns (None entries are skipped and give None).

    Returns one Timing per entry: median and minimum over ``repeats`` samples of
    the per-call time. A callable that raises gets a Timing with ``error`` set
    and is left out of the remaining samples.
    """
    timings = [None if fn is None else Timing() for fn in fns]
    live = []
    for fn, timing in zip(fns, timings):
        if fn is None:
            continue
        try:
            _warm_up(fn, warmup, min_sample_s, timing)
            live.append((fn, timing))
        except Exception as exc:  # noqa: BLE001 - reported in the results, the run goes on
            timing.error = _describe(exc)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(max(1, repeats)):
            for fn, timing in live:
                if timing.error is not None:
                    continue
                try:
                    start = time.perf_counter()
                    for _ in range(timing.batch):
                        fn()
                    elapsed = time.perf_counter() - start
                except Exception as exc:  # noqa: BLE001
                    timing.error = _describe(exc)
                    continue
                timing.samples_ms.append(1e3 * elapsed / timing.batch)
    finally:
        if gc_was_enabled:
            gc.enable()
    for _, timing in live:
        if timing.error is None:
            timing.median_ms = statistics.median(timing.samples_ms)
            timing.min_ms = min(timing.samples_ms)
    return timings
