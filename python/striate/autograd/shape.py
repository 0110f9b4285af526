"""Shape primitives: reshape, permute, indexing, concatenation, stacking."""
from __future__ import annotations

import numpy as np

from .._backend import array_module, is_cuda_array, to_device
from .function import Function


def _index_on_device_of(index, a):
    """index with its arrays on a's device: CPU indices may index a GPU tensor, as in torch.

    On the GPU a list becomes an array too (numpy reads both alike), so that the
    backward's ``cupy.add.at`` gets device indices.
    """
    if isinstance(index, tuple):
        return tuple(_index_on_device_of(i, a) for i in index)
    on_gpu = is_cuda_array(a)
    if on_gpu and isinstance(index, list):
        index = np.asarray(index) if index else np.empty(0, np.intp)
    if isinstance(index, np.ndarray) or is_cuda_array(index):
        return to_device(index, "cuda" if on_gpu else "cpu")
    return index


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return g.reshape(self.shape), None


class Permute(Function):
    def forward(self, a, dims):
        self.dims = tuple(d % a.ndim for d in dims)
        return array_module(a).ascontiguousarray(a.transpose(self.dims))

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return array_module(g).ascontiguousarray(g.transpose(inverse)), None


class GetItem(Function):
    """Basic and advanced indexing; the backward scatter-adds (repeats sum)."""

    def forward(self, a, index):
        index = _index_on_device_of(index, a)
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return array_module(a).ascontiguousarray(a[index])

    def backward(self, g):
        xp = array_module(g)
        out = xp.zeros(self.shape, dtype=self.dtype)
        xp.add.at(out, self.index, g)  # cupy has ufunc.at too (CuPy >= 12)
        return out, None


class Cat(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return array_module(arrays[0]).concatenate(arrays, axis=axis)

    def backward(self, g):
        xp = array_module(g)
        cuts = []
        total = 0
        for n in self.sizes[:-1]:
            total += n
            cuts.append(total)
        return tuple(xp.ascontiguousarray(p) for p in xp.split(g, cuts, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis=0):
        self.axis = axis
        return array_module(arrays[0]).stack(arrays, axis=axis)

    def backward(self, g):
        xp = array_module(g)
        return tuple(xp.ascontiguousarray(xp.take(g, i, axis=self.axis)) for i in range(g.shape[self.axis]))
