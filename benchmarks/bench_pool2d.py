"""Max pooling (with indices) and average pooling, k2 s2, against PyTorch.

The backward rows call PyTorch's backward kernels directly
(``aten.max_pool2d_with_indices_backward``, ``aten.avg_pool2d_backward``),
so that only the backward is timed on both sides.

Run alone: ``python benchmarks/bench_pool2d.py --threads 2``.
"""
from __future__ import annotations

from _harness import Case, main, memory_bound_benches, random_array, shape_text
from _timing import torch

FAMILY = "pool2d"
SHAPES = [(64, 64, 112, 112), (32, 128, 56, 56)]
QUICK_SHAPES = [(32, 128, 56, 56)]
KERNEL = STRIDE = 2


def _setup_max(x_shape):
    from striate import ops

    x = random_array(x_shape, seed=1)
    y, indices = ops.max_pool2d(x, KERNEL, STRIDE)
    dy = random_array(y.shape, seed=2)
    fns = {"fwd": (lambda: ops.max_pool2d(x, KERNEL, STRIDE), None),
           "bwd": (lambda: ops.max_pool2d_backward(dy, indices, x.shape), None)}
    if torch is None:
        return fns
    xt, dyt, it = torch.from_numpy(x), torch.from_numpy(dy), torch.from_numpy(indices)
    k, s = [KERNEL] * 2, [STRIDE] * 2
    fns["fwd"] = (fns["fwd"][0], lambda: torch.nn.functional.max_pool2d(
        xt, KERNEL, STRIDE, return_indices=True))
    fns["bwd"] = (fns["bwd"][0], lambda: torch.ops.aten.max_pool2d_with_indices_backward(
        dyt, xt, k, s, [0, 0], [1, 1], False, it))
    return fns


def _setup_avg(x_shape):
    from striate import ops

    x = random_array(x_shape, seed=1)
    dy = random_array(ops.avg_pool2d(x, KERNEL, STRIDE).shape, seed=2)
    fns = {"fwd": (lambda: ops.avg_pool2d(x, KERNEL, STRIDE), None),
           "bwd": (lambda: ops.avg_pool2d_backward(dy, x.shape, KERNEL, STRIDE), None)}
    if torch is None:
        return fns
    xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
    k, s = [KERNEL] * 2, [STRIDE] * 2
    fns["fwd"] = (fns["fwd"][0], lambda: torch.nn.functional.avg_pool2d(xt, KERNEL, STRIDE))
    fns["bwd"] = (fns["bwd"][0], lambda: torch.ops.aten.avg_pool2d_backward(
        dyt, xt, k, s, [0, 0], False, True, None))
    return fns


def cases(quick=False):
    result = []
    for x_shape in QUICK_SHAPES if quick else SHAPES:
        benches = memory_bound_benches()
        for name, setup in (("max_pool2d", _setup_max), ("avg_pool2d", _setup_avg)):
            n = x_shape[0] * x_shape[1] * x_shape[2] * x_shape[3]
            m = n // (STRIDE * STRIDE)
            # x and y in float32, max pooling's int64 indices
            moved = 4 * n + 4 * m + (8 * m if name == "max_pool2d" else 0)
            result.append(Case(f"{name} k{KERNEL} s{STRIDE}", shape_text(x_shape), benches,
                               lambda setup=setup, x_shape=x_shape: setup(x_shape),
                               {"fwd": moved, "bwd": moved}))
    return result


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
