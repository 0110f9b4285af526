"""``DataLoader``: batches, shuffling, resumable data order and prefetch.

Data order. Each ``iter(loader)`` is one epoch; ``loader.epoch`` is the
index of the epoch the next ``iter`` produces and advances by one when the
iterator is created. With ``shuffle=True``:

* ``seed`` given: epoch ``e`` uses ``numpy.random.default_rng([seed, e]).permutation(n)``,
  a pure function of ``(seed, e)``. Restoring ``epoch`` (``load_state_dict``)
  resumes the order bit-exactly.
* ``seed=None``: the permutation is drawn from ``striate.random.generator()``
  when the iterator is created, so ``st.manual_seed`` fixes it and
  ``st.set_rng_state`` (part of a checkpoint) resumes it.

Prefetch. With ``prefetch=True`` a background thread gathers the next batch
(``dataset.get_batch``) while the caller works on the current one, through a
queue of size one. The permutation is drawn before the thread starts and
``transform`` runs on the calling thread, in batch order, so every random
draw happens in the same order as without prefetch: the batches are
identical.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from ..random import generator
from .dataset import Dataset

_DONE = object()


class DataLoader:
    """Iterate over a dataset in batches of ``(x, y)`` Tensors.

    Args:
        dataset: a :class:`Dataset` (``get_batch`` is used when present).
        batch_size: samples per batch (the last one may be smaller).
        shuffle: a new permutation each epoch (see the module docstring).
        seed: makes the order a function of ``(seed, epoch)``; None uses the
            global generator.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        transform: a callable applied to each whole batch ``x`` Tensor
            (e.g. a :mod:`striate.data.transforms` pipeline).
        prefetch: gather the next batch on a background thread.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False, transform=None,
                 prefetch=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"DataLoader: seed must be None or a non-negative int, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = None if seed is None else int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.prefetch = bool(prefetch)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def state_dict(self) -> dict:
        """``{"epoch": ...}`` plus the transform's state when it has one."""
        state = {"epoch": self.epoch}
        if hasattr(self.transform, "state_dict"):
            state["transform"] = self.transform.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; the next ``iter`` continues from there."""
        self.epoch = int(state["epoch"])
        if "transform" in state and hasattr(self.transform, "load_state_dict"):
            self.transform.load_state_dict(state["transform"])

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        rng = generator() if self.seed is None else np.random.default_rng([self.seed, epoch])
        return rng.permutation(n).astype(np.int64)

    def _batch_indices(self, order):
        for i in range(len(self)):
            yield order[i * self.batch_size:(i + 1) * self.batch_size]

    def _gather(self, indices):
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        return Dataset.get_batch(self.dataset, indices)

    def __iter__(self):
        order = self._order(self.epoch)  # drawn now, in the caller's thread
        self.epoch += 1
        batches = (self._gather(idx) for idx in self._batch_indices(order))
        if self.prefetch:
            batches = _prefetched(batches)
        return self._transformed(batches)

    def _transformed(self, batches):
        for x, *rest in batches:
            yield ((x if self.transform is None else self.transform(x)), *rest)


def _prefetched(batches):
    """Run the ``batches`` generator one item ahead on a daemon thread."""
    items = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for item in batches:
                if not put(("ok", item)):
                    return
            put(("done", _DONE))
        except BaseException as exc:  # handed to the consumer and re-raised there
            put(("error", exc))

    thread = threading.Thread(target=work, name="striate-data-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = items.get()
            if kind == "done":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
