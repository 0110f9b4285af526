"""Define-by-run autograd: ``Function`` nodes and the backward engine.

A differentiable primitive subclasses :class:`Function` and implements
``forward`` (arrays in, array or tuple of arrays out) and ``backward``
(one gradient per output in, one gradient per positional input out, ``None``
where an input needs none) side by side. ``Function.apply`` unwraps
Tensors, runs ``forward`` and, when grad mode is on and some input requires
a gradient, records the node on its outputs. ``backward`` walks the recorded
graph in reverse topological order and accumulates into leaf ``.grad``.
"""
from __future__ import annotations

from .grad_mode import is_grad_enabled


class Function:
    """Base class of every differentiable primitive."""

    # Filled by apply(): the positional arguments (Tensors or other values),
    # which of them need a gradient, and how many outputs there are.
    inputs: tuple = ()
    needs_input_grad: tuple = ()
    n_outputs: int = 1
    non_differentiable = frozenset()

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError

    def save_for_backward(self, *values) -> None:
        self.saved = values

    def mark_non_differentiable(self, *output_indices: int) -> None:
        self.non_differentiable = frozenset(output_indices)

    @classmethod
    def apply(cls, *args, **kwargs):
        Tensor = _tensor_class()
        ctx = cls()
        arrays = []
        any_requires = False
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                any_requires = any_requires or a.requires_grad
            else:
                arrays.append(a)
        out = ctx.forward(*arrays, **kwargs)
        multiple = isinstance(out, tuple)
        outs = out if multiple else (out,)
        record = any_requires and is_grad_enabled()
        if record:
            ctx.inputs = args
            ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
            ctx.n_outputs = len(outs)
        results = []
        for i, o in enumerate(outs):
            t = Tensor(o)
            if record and i not in ctx.non_differentiable:
                t.requires_grad = True
                t._ctx = ctx
                t._out_index = i
            results.append(t)
        return tuple(results) if multiple else results[0]


_TENSOR = None


def _tensor_class():
    """striate.Tensor, imported on first use (tensor.py imports this module)."""
    global _TENSOR
    if _TENSOR is None:
        from ..tensor import Tensor

        _TENSOR = Tensor
    return _TENSOR


def _topological_order(root_ctx):
    """Function nodes reachable from root_ctx, inputs before users."""
    order, visited = [], set()
    stack = [(root_ctx, False)]
    while stack:
        ctx, expanded = stack.pop()
        if expanded:
            order.append(ctx)
            continue
        if id(ctx) in visited:
            continue
        visited.add(id(ctx))
        stack.append((ctx, True))
        for a in ctx.inputs:
            parent = getattr(a, "_ctx", None)
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def run_backward(root, gradient) -> None:
    """Propagate ``gradient`` (a Tensor shaped like root) back to the leaves."""
    Tensor = _tensor_class()

    if root._ctx is None:
        if root.requires_grad:
            root._accumulate_grad(gradient.data)
        return
    grads = {id(root._ctx): [None] * root._ctx.n_outputs}
    grads[id(root._ctx)][root._out_index] = gradient.data
    from .grad_mode import no_grad

    with no_grad():
        for ctx in reversed(_topological_order(root._ctx)):
            gouts = grads.pop(id(ctx), None)
            if gouts is None or all(g is None for g in gouts):
                continue
            gins = ctx.backward(*gouts)
            if not isinstance(gins, tuple):
                gins = (gins,)
            for inp, need, g in zip(ctx.inputs, ctx.needs_input_grad, gins):
                if not need or g is None:
                    continue
                if isinstance(g, Tensor):
                    g = g.data
                if inp._ctx is None:
                    inp._accumulate_grad(g)
                else:
                    slot = grads.setdefault(id(inp._ctx), [None] * inp._ctx.n_outputs)
                    k = inp._out_index
                    slot[k] = g if slot[k] is None else slot[k] + g
