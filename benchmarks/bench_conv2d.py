"""conv2d against PyTorch (oneDNN): forward, backward and forward+backward.

striate's fwd+bwd is ``conv2d`` then ``conv2d_backward`` with all three
gradients; PyTorch's is the forward then ``torch.autograd.grad`` for input,
weight and bias. The bwd rows time ``conv2d_backward`` against
``autograd.grad`` on a graph built once (``retain_graph=True``).

Run alone: ``python benchmarks/bench_conv2d.py --threads 2``.
"""
from __future__ import annotations

import math

from _harness import Bench, Case, main, random_array, shape_text
from _timing import torch

FAMILY = "conv2d"

# (x shape, out channels, kernel, stride, padding)
SHAPES = [
    ((64, 1, 28, 28), 32, 3, 1, 1),
    ((64, 32, 28, 28), 64, 3, 1, 1),
    ((32, 64, 56, 56), 64, 3, 1, 1),
    ((16, 128, 28, 28), 128, 3, 1, 1),
    ((8, 256, 14, 14), 256, 3, 1, 1),
    ((64, 3, 32, 32), 64, 3, 1, 1),
    ((32, 3, 224, 224), 64, 7, 2, 3),
    # ResNet-18's deep layers at 64x64 inputs (few positions per image) and a 1x1 downsampling
    ((16, 256, 4, 4), 256, 3, 1, 1),
    ((16, 512, 2, 2), 512, 3, 1, 1),
    ((16, 256, 4, 4), 512, 1, 2, 0),
    ((8, 512, 7, 7), 512, 3, 1, 1),
]
QUICK_SHAPES = [(64, 1, 28, 28), (64, 32, 28, 28), (8, 256, 14, 14)]


def _setup(x_shape, out_channels, kernel, stride, padding):
    from striate import ops

    in_channels = x_shape[1]
    x = random_array(x_shape, seed=1)
    w = random_array((out_channels, in_channels, kernel, kernel), seed=2,
                     scale=1.0 / math.sqrt(in_channels * kernel * kernel))
    b = random_array((out_channels,), seed=3)
    dy = random_array(ops.conv2d(x, w, b, stride, padding).shape, seed=4)

    def forward():
        return ops.conv2d(x, w, b, stride, padding)

    def backward():
        return ops.conv2d_backward(dy, x, w, stride, padding, 1, 1, "zeros", (True, True, True))

    def forward_backward():
        forward()
        return backward()

    fns = {"fwd": (forward, None), "bwd": (backward, None), "fwd+bwd": (forward_backward, None)}
    if torch is None:
        return fns
    F = torch.nn.functional
    xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
    leaves = tuple(torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    graph = F.conv2d(*leaves, stride=stride, padding=padding)

    def torch_forward():
        return F.conv2d(xt, wt, bt, stride=stride, padding=padding)

    def torch_backward():
        return torch.autograd.grad(graph, leaves, dyt, retain_graph=True)

    def torch_forward_backward():
        return torch.autograd.grad(F.conv2d(*leaves, stride=stride, padding=padding), leaves, dyt)

    fns["fwd"] = (forward, torch_forward)
    fns["bwd"] = (backward, torch_backward)
    fns["fwd+bwd"] = (forward_backward, torch_forward_backward)
    return fns


def cases(quick=False):
    result = []
    for x_shape, out_channels, kernel, stride, padding in SHAPES:
        if quick and x_shape not in QUICK_SHAPES:
            continue
        op = f"conv2d {kernel}x{kernel}" + (f" s{stride}" if stride != 1 else "") + f" p{padding}"
        benches = [Bench("fwd", "PyTorch"), Bench("bwd", "PyTorch"), Bench("fwd+bwd", "PyTorch", 3.0)]
        result.append(Case(op, f"{shape_text(x_shape)}->{out_channels}", benches,
                           lambda args=(x_shape, out_channels, kernel, stride, padding): _setup(*args)))
    return result


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
