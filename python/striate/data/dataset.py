"""Datasets: the ``Dataset`` protocol and ``TensorDataset``.

A dataset maps an index to one ``(x, y)`` sample. Loaders ask for whole
batches through :meth:`Dataset.get_batch`, which array-backed datasets
answer with a single fancy-indexing gather instead of one call per sample.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, tensor


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(i) -> (x, y)``.

    ``x`` is an array or Tensor of one sample (C, H, W), ``y`` an integer
    label (or an array). The default :meth:`get_batch` stacks samples.
    """

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def get_batch(self, indices):
        """The samples at ``indices`` (an int64 numpy array) as ``(x, y)`` Tensors."""
        xs, ys = zip(*(self[int(i)] for i in indices))
        x = np.stack([v.numpy() if isinstance(v, Tensor) else np.asarray(v) for v in xs])
        y = np.stack([v.numpy() if isinstance(v, Tensor) else np.asarray(v) for v in ys])
        if x.dtype == np.float64:
            x = x.astype(np.float32)
        if y.dtype.kind in "iub":
            y = y.astype(np.int64)
        return Tensor(x), Tensor(y)


class TensorDataset(Dataset):
    """Samples are the rows of ``x``, ``y`` and any further arrays (Tensors or arrays, same length).

    The arrays stay on their device; a batch is gathered there. Integer
    targets (``y`` and the extra arrays) are stored as int64. A sample (and a batch) is the tuple of rows,
    ``(x, y)`` or, with extra arrays, ``(x, y, *extra)``.

    Args:
        x: (N, ...) inputs, e.g. (N, C, H, W) float32 images in [0, 1].
        y: (N, ...) targets, e.g. (N,) class labels.
        *extra: more (N, ...) arrays, e.g. a second target.
    """

    def __init__(self, x, y, *extra):
        x = x if isinstance(x, Tensor) else tensor(x)
        self.tensors = (x,) + tuple(self._as_tensor(t) for t in (y,) + extra)
        self.x, self.y = self.tensors[0], self.tensors[1]
        if any(len(t.shape) == 0 or t.shape[0] != self.x.shape[0] for t in self.tensors):
            raise ValueError(f"TensorDataset: x, y and the extra arrays must have the same first dimension, "
                             f"got shapes {[t.shape for t in self.tensors]}")

    @staticmethod
    def _as_tensor(t):
        t = t if isinstance(t, Tensor) else tensor(t)
        if t.dtype.kind in "iub" and t.dtype != np.int64:
            t = Tensor(t.data.astype(np.int64))
        return t

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index):
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def get_batch(self, indices):
        def gather(t):
            idx = indices if t.device == "cpu" else tensor(indices, device=t.device).data
            return Tensor(t.data[idx])
        return tuple(gather(t) for t in self.tensors)
