"""conv2d against PyTorch (oneDNN): forward, backward and forward+backward.

striate's fwd+bwd is ``conv2d`` then ``conv2d_backward`` with all three
gradients; PyTorch's is the forward then ``torch.autograd.grad`` for input,
weight and bias. The bwd rows time ``conv2d_backward`` against
``autograd.grad`` on a graph built once (``retain_graph=True``).

The shapes are a few classic ones plus every distinct convolution layer of
real networks, found by running each network once (batch 1) with
``striate.ops.conv2d`` traced, then timed at the network's training batch:
ResNet-18 at 64x64 and 224x224 (batch 16), VGG-11 at 224x224 (batch 8) and the
U-Net the command line trains on Shapes (depth 3, base 16, 32x32, batch 32).
``--quick`` keeps three classic shapes.

Run alone: ``python benchmarks/bench_conv2d.py --threads 2``.
"""
from __future__ import annotations

import math

from _harness import CONV_TARGET, Bench, Case, main, random_array, shape_text
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
# (name, builder of the striate model, input side, training batch)
NETWORKS = [
    ("ResNet-18", lambda models: models.resnet18(num_classes=10), 64, 16),
    ("ResNet-18", lambda models: models.resnet18(num_classes=10), 224, 16),
    ("VGG-11", lambda models: models.vgg11(num_classes=10), 224, 8),
    ("U-Net", lambda models: models.unet(3, 4, depth=3, base=16, batch_norm=True), 32, 32),
]


def _square(v):
    """The one value of an int or an equal pair, else None (a string padding mode, unequal sides)."""
    if isinstance(v, int):
        return v
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1] and isinstance(v[0], int):
        return v[0]
    return None


def network_shapes():
    """[(names, x shape, out channels, kernel, stride, padding)]: the distinct conv2d layers of NETWORKS.

    Each network runs once on a zero batch of one with ``striate.ops.conv2d`` wrapped to record its
    arguments; the recorded batch of one is replaced by the network's training batch.
    """
    import numpy as np

    import striate as st
    import striate.models as models
    from striate import ops

    found = {}
    real = ops.conv2d

    for name, build, side, batch in NETWORKS:
        def traced(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, *args, **kwargs):
            stride, padding = _square(stride), _square(padding)
            if None in (stride, padding) or _square(dilation) != 1 or groups != 1 or w.shape[2] != w.shape[3]:
                raise ValueError(f"bench_conv2d: {name} has a conv2d this benchmark cannot time "
                                 f"(stride {stride}, padding {padding}, dilation {dilation}, groups {groups})")
            key = ((batch,) + tuple(x.shape[1:]), int(w.shape[0]), int(w.shape[2]), int(stride), int(padding))
            label = f"{name} {side}"
            if label not in found.setdefault(key, []):
                found[key].append(label)
            return real(x, w, b, stride, padding, dilation, groups, *args, **kwargs)

        model = build(models)
        model.eval()
        ops.conv2d = traced
        try:
            with st.no_grad():
                model(st.tensor(np.zeros((1, 3, side, side), np.float32)))
        finally:
            ops.conv2d = real
    return [(", ".join(names),) + key for key, names in found.items()]


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
    shapes = [("",) + s for s in SHAPES if not quick or s[0] in QUICK_SHAPES]
    if not quick:
        classic = {s[1:] for s in shapes}
        shapes += [s for s in network_shapes() if s[1:] not in classic]
    for names, x_shape, out_channels, kernel, stride, padding in shapes:
        op = (f"conv2d {kernel}x{kernel}" + (f" s{stride}" if stride != 1 else "") + f" p{padding}"
              + (f" ({names})" if names else ""))
        benches = [Bench("fwd", "PyTorch"), Bench("bwd", "PyTorch"), Bench("fwd+bwd", "PyTorch", CONV_TARGET)]
        result.append(Case(op, f"{shape_text(x_shape)}->{out_channels}", benches,
                           lambda args=(x_shape, out_channels, kernel, stride, padding): _setup(*args)))
    return result


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
