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
    """Samples are the rows of ``x`` and ``y`` (Tensors or arrays, same length).

    The arrays stay on their device; a batch is gathered there. Integer
    labels are stored as int64.

    Args:
        x: (N, ...) inputs, e.g. (N, C, H, W) float32 images in [0, 1].
        y: (N, ...) targets, e.g. (N,) class labels.
    """

    def __init__(self, x, y):
        self.x = x if isinstance(x, Tensor) else tensor(x)
        self.y = y if isinstance(y, Tensor) else tensor(y)
        if self.y.dtype.kind in "iub" and self.y.dtype != np.int64:
            self.y = Tensor(self.y.data.astype(np.int64))
        if len(self.x.shape) == 0 or len(self.y.shape) == 0 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"TensorDataset: x and y must have the same first dimension, got shapes "
                             f"{self.x.shape} and {self.y.shape}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, index):
        return Tensor(self.x.data[index]), Tensor(self.y.data[index])

    def get_batch(self, indices):
        def gather(t):
            idx = indices if t.device == "cpu" else tensor(indices, device=t.device).data
            return Tensor(t.data[idx])
        return gather(self.x), gather(self.y)
