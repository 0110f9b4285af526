"""Max unpooling, k2 s2, against PyTorch, with indices from a max pool.

The shapes are the full-resolution tensors: unpooling takes the pooled
(N, C, H/2, W/2) values and writes (N, C, H, W). PyTorch has no separate
backward kernel, so its bwd row is ``autograd.grad`` on a graph built once.

Run alone: ``python benchmarks/bench_unpool2d.py --threads 2``.
"""
from __future__ import annotations

from _harness import Case, main, memory_bound_benches, random_array, shape_text
from _timing import torch
from bench_pool2d import KERNEL, QUICK_SHAPES, SHAPES, STRIDE  # unpools what bench_pool2d pools

FAMILY = "unpool2d"


def _setup(x_shape):
    from striate import ops

    y, indices = ops.max_pool2d(random_array(x_shape, seed=1), KERNEL, STRIDE)
    dz = random_array(x_shape, seed=2)
    fns = {"fwd": (lambda: ops.max_unpool2d(y, indices, KERNEL, STRIDE), None),
           "bwd": (lambda: ops.max_unpool2d_backward(dz, indices), None)}
    if torch is None:
        return fns
    F = torch.nn.functional
    yt, it, dzt = torch.from_numpy(y), torch.from_numpy(indices), torch.from_numpy(dz)
    leaf = torch.from_numpy(y).requires_grad_()
    graph = F.max_unpool2d(leaf, it, KERNEL, STRIDE)
    fns["fwd"] = (fns["fwd"][0], lambda: F.max_unpool2d(yt, it, KERNEL, STRIDE))
    fns["bwd"] = (fns["bwd"][0], lambda: torch.autograd.grad(graph, leaf, dzt, retain_graph=True))
    return fns


def cases(quick=False):
    result = []
    for x_shape in QUICK_SHAPES if quick else SHAPES:
        pooled = x_shape[:2] + (x_shape[2] // STRIDE, x_shape[3] // STRIDE)
        shape = f"{shape_text(pooled)}->{shape_text(x_shape[2:])}"
        benches = memory_bound_benches()
        n = x_shape[0] * x_shape[1] * x_shape[2] * x_shape[3]
        m = n // (STRIDE * STRIDE)
        # forward: read values and int64 indices, write the whole output; backward: read the
        # indices and every line of the output gradient, write the pooled gradient
        result.append(Case(f"max_unpool2d k{KERNEL} s{STRIDE}", shape, benches,
                           lambda x_shape=x_shape: _setup(x_shape),
                           {"fwd": 4 * m + 8 * m + 4 * n, "bwd": 8 * m + 4 * n + 4 * m}))
    return result


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
