"""Dropout p=0.5 against PyTorch's ``native_dropout`` (which also returns its mask).

Run alone: ``python benchmarks/bench_dropout.py --threads 2``.
"""
from __future__ import annotations

from _harness import Case, main, memory_bound_benches, random_array, shape_text
from _timing import torch

FAMILY = "dropout"
SHAPES = [(64, 64, 112, 112)]
QUICK_SHAPES = [(32, 128, 56, 56)]  # a quarter of the size, for smoke runs
P = 0.5
SEED = 1234


def _setup(shape):
    from striate import ops

    x = random_array(shape, seed=1)
    dy = random_array(shape, seed=2)
    _, mask = ops.dropout(x, P, SEED)
    fns = {"fwd": (lambda: ops.dropout(x, P, SEED), None),
           "bwd": (lambda: ops.dropout_backward(dy, mask, P), None)}
    if torch is None:
        return fns
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    mask_t = torch.native_dropout(xt, P, True)[1]
    fns["fwd"] = (fns["fwd"][0], lambda: torch.native_dropout(xt, P, True))
    fns["bwd"] = (fns["bwd"][0],
                  lambda: torch.ops.aten.native_dropout_backward(dyt, mask_t, 1.0 / (1.0 - P)))
    return fns


def cases(quick=False):
    benches = memory_bound_benches()
    # float32 in and out plus the uint8 mask: 9 bytes per element each way
    return [Case(f"dropout p={P:g}", shape_text(shape), benches, lambda shape=shape: _setup(shape),
                 {"fwd": 9 * _count(shape), "bwd": 9 * _count(shape)})
            for shape in (QUICK_SHAPES if quick else SHAPES)]


def _count(shape):
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
