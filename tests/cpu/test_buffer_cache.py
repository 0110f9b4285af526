"""striate.cpu: the caching allocator behind numpy arrays."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import striate
from striate import _cpu

BIG = 1 << 20  # elements of float32: 4 MiB, a cacheable (and huge-page) block
# numpy 2 moved numpy.core to numpy._core (the old name warns)
multiarray = (np._core if hasattr(np, "_core") else np.core).multiarray


def test_installed_as_numpys_allocator():
    assert striate.cpu.cache_enabled()
    assert multiarray.get_handler_name() == "striate_buffer_cache"
    assert multiarray.get_handler_name(np.empty(BIG, np.float32)) == "striate_buffer_cache"


def test_a_freed_block_is_reused():
    a = np.empty(BIG, np.float32)
    address = a.ctypes.data
    del a
    before = striate.cpu.memory_stats()
    assert before["cached_bytes"] >= 4 * BIG
    b = np.empty(BIG - 100, np.float32)  # same size class
    after = striate.cpu.memory_stats()
    assert after["hits"] == before["hits"] + 1
    assert b.ctypes.data == address
    assert b.ctypes.data % 64 == 0


def test_values_are_what_numpy_promises():
    a = np.full(BIG, 7.0, np.float32)
    del a
    z = np.zeros(BIG, np.float32)  # calloc from a dirty cached block must still be zeros
    assert not z.any()
    r = np.arange(10.0)
    r.resize(BIG, refcheck=False)  # realloc keeps the contents and zero-fills the rest
    np.testing.assert_array_equal(r[:10], np.arange(10.0))
    assert not r[10:].any()
    r.resize(5, refcheck=False)
    np.testing.assert_array_equal(r, np.arange(5.0))


def test_limit_and_empty_cache():
    limit = striate.cpu.get_cache_limit()
    try:
        striate.cpu.set_cache_limit(0)
        a = np.empty(BIG, np.float32)
        del a
        assert striate.cpu.memory_stats()["cached_bytes"] == 0
        striate.cpu.set_cache_limit(limit)
        a = np.empty(BIG, np.float32)
        del a
        assert striate.cpu.memory_stats()["cached_bytes"] > 0
        striate.cpu.empty_cache()
        assert striate.cpu.memory_stats()["cached_bytes"] == 0
    finally:
        striate.cpu.set_cache_limit(limit)
    with pytest.raises(ValueError, match="nbytes must be an int >= 0"):
        striate.cpu.set_cache_limit(-1)


def test_arrays_cross_threads_and_allocators():
    made = []

    def worker():  # a new thread has numpy's default allocator in its context
        made.append(np.ones(BIG, np.float32))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    ours = np.ones(BIG, np.float32)
    total = made.pop() + ours  # freed below in either order, each by the allocator that made it
    del ours
    assert float(total[0]) == 2.0


def test_training_step_hits_the_cache():
    import striate.nn.functional as F

    model = striate.nn.Sequential(striate.nn.Conv2d(3, 16, 3, padding=1), striate.nn.BatchNorm2d(16),
                                  striate.nn.ReLU(), striate.nn.Flatten(), striate.nn.Linear(16 * 32 * 32, 10))
    x = striate.tensor(np.random.default_rng(0).standard_normal((16, 3, 32, 32), dtype=np.float32))
    y = striate.tensor(np.arange(16) % 10)

    def step():
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()

    step()
    before = striate.cpu.memory_stats()
    step()
    after = striate.cpu.memory_stats()
    assert after["hits"] - before["hits"] > 0
    assert after["misses"] == before["misses"]  # the second step needs no fresh block


def test_opt_out_keeps_numpys_allocator():
    code = ("import numpy as np, striate; "
            "m = (np._core if hasattr(np, '_core') else np.core).multiarray; "
            "print(striate.cpu.cache_enabled(), m.get_handler_name())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "STRIATE_CPU_CACHE": "0"}, check=True).stdout
    assert out.strip().splitlines()[-1] == "False default_allocator"


def test_bad_limit_in_the_environment():
    out = subprocess.run([sys.executable, "-c", "import striate"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "STRIATE_CPU_CACHE_LIMIT": "lots"})
    assert out.returncode != 0 and "STRIATE_CPU_CACHE_LIMIT must be a byte count" in out.stderr


def test_stats_are_counters():
    stats = _cpu.buffer_cache_stats()
    assert set(stats) == {"cached_bytes", "cached_blocks", "limit_bytes", "hits", "misses", "allocated_bytes"}


def test_small_blocks_freed_on_other_threads():
    # small arrays come from per-thread stacks; freeing them on a thread that never allocated
    # (or after that thread ended) must hand them back safely
    made = [np.full(n, float(n)) for n in range(1, 300)]
    moved = []

    def take():
        while made:
            moved.append(made.pop())
        for a in moved[:100]:
            assert a[0] == float(a.size)
        del moved[:100]

    t = threading.Thread(target=take)
    t.start()
    t.join()
    for a in moved:
        assert a[-1] == float(a.size)
    moved.clear()
    again = [np.empty(n) for n in range(1, 300)]  # reuses what the main thread got back
    assert all(a.size == n for a, n in zip(again, range(1, 300)))
