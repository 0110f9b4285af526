"""Autograd and layers against PyTorch: Python overhead per op on tiny tensors,
and one training step (forward, backward, SGD step) of a small CNN.

The CNN is conv3x3(1->32)+ReLU+maxpool2, conv3x3(32->64)+ReLU+maxpool2,
linear(3136->128)+ReLU+dropout(0.5), linear(128->10), batch 64 on 1x28x28
inputs, cross-entropy loss, SGD(lr=0.01, momentum=0.9). Both libraries start
from the same weights.

Run alone: ``python benchmarks/bench_autograd.py --threads 2``.
"""
from __future__ import annotations

from _harness import STEP_TARGET, Bench, Case, main, random_array
from _timing import torch

FAMILY = "autograd"
TINY = (4, 4)


def _tiny_setup(kind):
    import striate as st
    import striate.nn.functional as F

    a_np, b_np = random_array(TINY, seed=1), random_array(TINY, seed=2)
    img_np, w_np = random_array((1, 1, 8, 8), seed=3), random_array((2, 1, 3, 3), seed=4)
    a, b = st.tensor(a_np, requires_grad=True), st.tensor(b_np)
    img, w = st.tensor(img_np), st.tensor(w_np, requires_grad=True)
    ours = {
        "add": lambda: a + b,
        "relu": lambda: F.relu(a),
        "conv2d": lambda: F.conv2d(img, w, padding=1),
        "mul+sum+backward": lambda: (a * b).sum().backward(),
    }[kind]
    fns = {"fwd" if kind != "mul+sum+backward" else "fwd+bwd": (ours, None)}
    if torch is None:
        return fns
    ta, tb = torch.from_numpy(a_np).requires_grad_(), torch.from_numpy(b_np)
    timg, tw = torch.from_numpy(img_np), torch.from_numpy(w_np).requires_grad_()
    ref = {
        "add": lambda: ta + tb,
        "relu": lambda: torch.relu(ta),
        "conv2d": lambda: torch.nn.functional.conv2d(timg, tw, padding=1),
        "mul+sum+backward": lambda: (ta * tb).sum().backward(),
    }[kind]
    key = next(iter(fns))
    fns[key] = (ours, ref)
    return fns


def _cnn(nn):
    """The benchmark CNN from either library's ``nn`` namespace (same layer names)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def _step_setup():
    import numpy as np

    import striate as st
    import striate.nn.functional as F

    st.manual_seed(0)
    x_np = random_array((64, 1, 28, 28), seed=5)
    y_np = np.random.default_rng(6).integers(0, 10, 64)
    model = _cnn(st.nn)
    opt = st.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = st.tensor(x_np), st.tensor(y_np)

    def ours():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    if torch is None:
        return {"step": (ours, None)}
    tmodel = _cnn(torch.nn)
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def ref():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
        loss.backward()
        topt.step()

    return {"step": (ours, ref)}


def cases(quick=False):
    tiny = [Case(f"tiny op: {kind}", "(4,4)" if kind != "conv2d" else "(1,1,8,8)*(2,1,3,3)",
                 [Bench("fwd+bwd" if kind == "mul+sum+backward" else "fwd", "PyTorch")],
                 lambda kind=kind: _tiny_setup(kind))
            for kind in ("add", "relu", "conv2d", "mul+sum+backward")]
    step = Case("CNN training step (SGD)", "(64,1,28,28)", [Bench("step", "PyTorch", STEP_TARGET)],
                _step_setup)
    return tiny + [step]


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
