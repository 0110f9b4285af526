"""One training epoch of LeNet-5 on MNIST5k: striate against the same model and loop in PyTorch.

The epoch is 4,000 training images in shuffled batches of 64 (63 steps, the
last one of 32): gather the batch, forward, cross-entropy, backward and an
SGD(lr=0.01, momentum=0.9) step. Both libraries start from the same weights,
see the same batches (one numpy permutation per epoch) and run at the same
thread count. The model is ``striate.models.lenet5`` (conv5x5 pad 2 + ReLU + maxpool2,
conv5x5 + ReLU + maxpool2, three linear layers; the PyTorch twin takes its sizes
from it); without that package, the classic conv 1->6->16, linear 400->120->84->10.
The images are MNIST5k's (``striate.data.MNIST5k``); without that package the
bench uses random images of the same shape, which time the same.

Run alone: ``python benchmarks/bench_epoch.py --threads 2``.
"""
from __future__ import annotations

import numpy as np

from _harness import Bench, Case, main, random_array
from _timing import torch

FAMILY = "epoch"
BATCH = 64
TRAIN_IMAGES = 4000


def _images():
    """(4000, 1, 28, 28) float32 images in [0, 1] and int64 labels."""
    try:
        from striate.data import MNIST5k
    except ImportError:
        x = np.clip(random_array((TRAIN_IMAGES, 1, 28, 28), seed=7) * 0.3 + 0.2, 0, 1)
        return x.astype(np.float32), np.random.default_rng(8).integers(0, 10, TRAIN_IMAGES)
    data = MNIST5k(train=True)
    return data.x.numpy(), data.y.numpy()


def _striate_lenet5(st):
    try:
        from striate.models import lenet5
    except ImportError:
        nn = st.nn
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    return lenet5()


def _torch_twin(model):
    """The same layers in PyTorch, sized from striate's parameters and holding the same values.

    The parameters, in order, are conv1 (weight, bias), conv2, then the three linear layers.
    """
    nn = torch.nn
    arrays = [p.numpy() for p in model.parameters()]
    c1, c2, l1, l2, l3 = (arrays[i].shape for i in range(0, 10, 2))
    twin = nn.Sequential(
        nn.Conv2d(c1[1], c1[0], c1[2], padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2[1], c2[0], c2[2]), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(l1[1], l1[0]), nn.ReLU(), nn.Linear(l2[1], l2[0]), nn.ReLU(),
        nn.Linear(l3[1], l3[0]))
    with torch.no_grad():
        for theirs, array in zip(twin.parameters(), arrays):
            theirs.copy_(torch.from_numpy(array))
    return twin


def _epoch_setup():
    import striate as st
    import striate.nn.functional as F

    st.manual_seed(0)
    x_np, y_np = _images()
    orders = np.random.default_rng(9)
    model = _striate_lenet5(st)
    opt = st.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def batches():
        order = orders.permutation(len(x_np))
        for i in range(0, len(order), BATCH):
            pick = order[i:i + BATCH]
            yield x_np[pick], y_np[pick]

    def ours():
        for x, y in batches():
            opt.zero_grad()
            F.cross_entropy(model(st.tensor(x)), st.tensor(y)).backward()
            opt.step()

    if torch is None:
        return {"epoch": (ours, None)}
    tmodel = _torch_twin(model)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)

    def ref():
        for x, y in batches():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            topt.step()

    return {"epoch": (ours, ref)}


def cases(quick=False):
    return [Case("LeNet-5 epoch, MNIST5k (SGD)", f"({TRAIN_IMAGES},1,28,28) batch {BATCH}",
                 [Bench("epoch", "PyTorch")], _epoch_setup)]


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
