"""Elementwise, matrix and reduction primitives (forward and backward side by side).

Arrays are numpy or cupy; ``xp`` is the matching module. Binary ops
broadcast like numpy, and their backward sums the gradient back to each
input's shape (:func:`unbroadcast`).
"""
from __future__ import annotations

from .. import ops
from .._backend import array_module
from .function import Function


def _shape(a):
    return getattr(a, "shape", ())


def unbroadcast(g, shape):
    """Sum g over the axes that broadcasting added or stretched to reach shape."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def _grad_for(a, g):
    """Gradient for input a: None for plain numbers, else reduced to a's shape."""
    if not hasattr(a, "shape"):
        return None
    return unbroadcast(g, a.shape).astype(a.dtype, copy=False)


class Add(Function):
    def forward(self, a, b):
        self.saved = (a, b)
        return a + b

    def backward(self, g):
        a, b = self.saved
        return _grad_for(a, g), _grad_for(b, g)


class Sub(Function):
    def forward(self, a, b):
        self.saved = (a, b)
        return a - b

    def backward(self, g):
        a, b = self.saved
        gb = _grad_for(b, g)
        return _grad_for(a, g), (None if gb is None else -gb)


class Mul(Function):
    def forward(self, a, b):
        self.saved = (a, b)
        return a * b

    def backward(self, g):
        a, b = self.saved
        return _grad_for(a, g * b), _grad_for(b, g * a)


class Div(Function):
    def forward(self, a, b):
        self.saved = (a, b)
        return a / b

    def backward(self, g):
        a, b = self.saved
        return _grad_for(a, g / b), _grad_for(b, -g * a / (b * b))


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """a ** p for a constant exponent p."""

    def forward(self, a, p):
        self.saved = (a, p)
        return a ** p

    def backward(self, g):
        a, p = self.saved
        return g * p * a ** (p - 1), None


class Exp(Function):
    def forward(self, a):
        self.y = array_module(a).exp(a)
        return self.y

    def backward(self, g):
        return g * self.y


class Log(Function):
    def forward(self, a):
        self.a = a
        return array_module(a).log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.y = array_module(a).sqrt(a)
        return self.y

    def backward(self, g):
        return g / (2 * self.y)


class Abs(Function):
    def forward(self, a):
        self.a = a
        return array_module(a).abs(a)

    def backward(self, g):
        return g * array_module(g).sign(self.a)


class Clamp(Function):
    """Gradient flows where min <= a <= max (PyTorch's convention)."""

    def forward(self, a, lo, hi):
        xp = array_module(a)
        self.mask = xp.ones(a.shape, dtype=bool)
        y = a
        if lo is not None:
            self.mask &= a >= lo
            y = xp.maximum(y, xp.asarray(lo, dtype=a.dtype))
        if hi is not None:
            self.mask &= a <= hi
            y = xp.minimum(y, xp.asarray(hi, dtype=a.dtype))
        return y.astype(a.dtype, copy=False)

    def backward(self, g):
        return g * self.mask, None, None


def _contiguous(a):
    return array_module(a).ascontiguousarray(a)


class MatMul(Function):
    """numpy matmul semantics (1-D operands promoted, batch dims broadcast).

    2-D products run on striate's GEMM (``ops.matmul``), transposes folded in.
    """

    def forward(self, a, b):
        self.saved = (a, b)
        if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype:
            return ops.matmul(_contiguous(a), _contiguous(b))
        return a @ b

    def backward(self, g):
        a, b = self.saved
        xp = array_module(g)
        if a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype:
            g = _contiguous(g)
            return (ops.matmul(g, _contiguous(b), trans_b=True),
                    ops.matmul(_contiguous(a), g, trans_a=True))
        if a.ndim == 1 and b.ndim == 1:  # inner product: g is a scalar
            return g * b, g * a
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = g2 @ xp.swapaxes(b2, -1, -2)
        gb = xp.swapaxes(a2, -1, -2) @ g2
        if a.ndim == 1:
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if b.ndim == 1:
            gb = gb.reshape(gb.shape[:-1])
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axis) if ndim else ()


def _expand(g, shape, axes, keepdims):
    """Re-insert the reduced axes of g so it broadcasts against shape."""
    xp = array_module(g)
    if not keepdims:
        for a in sorted(axes):
            g = xp.expand_dims(g, a)
    return xp.broadcast_to(g, shape)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return _expand(g, self.shape, self.axes, self.keepdims).copy()


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.shape, self.axes, self.keepdims = a.shape, _axes(axis, a.ndim), keepdims
        self.count = 1
        for ax in self.axes:
            self.count *= a.shape[ax]
        return a.mean(axis=self.axes, keepdims=keepdims)

    def backward(self, g):
        return _expand(g / self.count, self.shape, self.axes, self.keepdims).copy()


class Max(Function):
    """Max over axis; the gradient is shared evenly among tied maxima."""

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axes, self.keepdims = a, _axes(axis, a.ndim), keepdims
        self.y = a.max(axis=self.axes, keepdims=True)
        return self.y if keepdims else self.y.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        mask = (self.a == self.y).astype(self.a.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return _expand(g, self.a.shape, self.axes, self.keepdims) * mask
