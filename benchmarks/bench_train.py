"""Whole training steps of real networks: striate against the same models in PyTorch.

One step is what a training loop does per batch: zero the gradients, forward,
loss, backward and the optimizer's update (for the DCGAN, one discriminator
step on a real and a generated batch, then one generator step). Both
libraries start from the same weights (the PyTorch twin loads striate's state
dict with strict names, see ``_twins.py``; their eval-mode outputs are checked
to agree before timing), see the same batch and run at the same thread count;
their steps are interleaved.

- LeNet-5 (``striate.models.lenet5``), batch 64, 1x28x28, SGD(0.01, momentum 0.9)
- BN CNN: three conv3x3-BN-ReLU-maxpool stages (32, 64, 128), linear 2048->256, dropout 0.5,
  linear 256->10; batch 64, 3x32x32, Adam(1e-3)
- ResNet-18 (``striate.models.resnet18``, 10 classes), batch 16, 3x64x64 and 3x224x224,
  SGD(0.01, momentum 0.9)
- U-Net as the CLI trains it on Shapes (depth 3, base 16, BatchNorm), batch 32, 3x32x32,
  4 classes, per-pixel cross-entropy, Adam(3e-3)
- DCGAN (``DCGenerator``/``DCDiscriminator``, z 64, base 32), batch 64, 1x28x28,
  BCE with logits, Adam(2e-4, betas (0.5, 0.999)) on each side

Run alone: ``python benchmarks/bench_train.py --threads 1,2``.
"""
from __future__ import annotations

import numpy as np

import _twins
from _harness import Bench, Case, main, random_array
from _timing import torch

FAMILY = "train"
STEP_TARGET = 1.0


def _check_twins(pairs, inputs, name):
    """Raises when a twin's eval-mode output differs from the striate model's (so the timing compares
    the same network)."""
    import striate as st

    for (model, twin), x in zip(pairs, inputs):
        model.eval()
        twin.eval()
        with st.no_grad():
            ours = model(st.tensor(x)).numpy()
        with torch.no_grad():
            theirs = twin(torch.from_numpy(x)).numpy()
        model.train()
        twin.train()
        scale = max(1e-6, float(np.abs(theirs).max()))
        err = float(np.abs(ours - theirs).max()) / scale
        if not err < 1e-3:
            raise AssertionError(f"{name}: the PyTorch twin disagrees with the striate model "
                                 f"(relative error {err:.2e})")


def _step_setup(build, twin_of, x_np, y_np, optimizer, seed, name="bench_train"):
    """Training-step callables (striate, PyTorch twin) on one fixed batch, cross-entropy loss."""
    import striate as st
    import striate.nn.functional as F

    st.manual_seed(seed)
    model = build()
    opt = optimizer(st.optim, model.parameters())
    x, y = st.tensor(x_np), st.tensor(y_np)

    def ours():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    if torch is None:
        return {"step": (ours, None)}
    twin = _twins.copy_weights(model, twin_of(model))
    _check_twins([(model, twin)], [x_np[:4]], name)
    topt = optimizer(torch.optim, twin.parameters())
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

    def ref():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(twin(tx), ty).backward()
        topt.step()

    return {"step": (ours, ref)}


def _classifier_setup(build, twin_of, x_shape, classes, optimizer, seed):
    x_np = np.clip(random_array(x_shape, seed=seed) * 0.5, -2, 2)
    y_np = np.random.default_rng(seed + 1).integers(0, classes, x_shape[0])
    return _step_setup(build, twin_of, x_np, y_np, optimizer, seed)


def _sgd(optim, params):
    return optim.SGD(params, lr=0.01, momentum=0.9)


def _adam(lr):
    return lambda optim, params: optim.Adam(params, lr=lr)


def _lenet():
    import striate as st
    import striate.models  # noqa: F401 - st.models

    return _classifier_setup(lambda: st.models.lenet5(), lambda m: _twins.lenet5(torch.nn, m),
                             (64, 1, 28, 28), 10, _sgd, 10)


def _bn_cnn():
    import striate as st
    import striate.models  # noqa: F401 - st.models

    return _classifier_setup(lambda: _twins.bn_cnn(st.nn), lambda m: _twins.bn_cnn(torch.nn),
                             (64, 3, 32, 32), 10, _adam(1e-3), 20)


def _resnet18(side):
    import striate as st
    import striate.models  # noqa: F401 - st.models

    return lambda: _classifier_setup(lambda: st.models.resnet18(num_classes=10),
                                     lambda m: _twins.resnet(torch.nn, [2, 2, 2, 2], 10),
                                     (16, 3, side, side), 10, _sgd, 30)


UNET = {"in_channels": 3, "num_classes": 4, "depth": 3, "base": 16, "batch_norm": True}


def _unet():
    import striate as st

    x_np = random_array((32, 3, 32, 32), seed=40) * 0.3 + 0.5
    y_np = np.random.default_rng(41).integers(0, UNET["num_classes"], (32, 32, 32))
    return _step_setup(lambda: st.models.unet(**UNET), lambda m: _twins.unet(torch.nn, torch, **UNET),
                       x_np, y_np, _adam(3e-3), 40, "bench_train U-Net")


DCGAN = {"z_dim": 64, "channels": 1, "size": 28, "base": 32}


def _gan_step(lib, F, G, D, opt_g, opt_d, real, z, ones, zeros):
    """One discriminator step (real and detached fake) and one generator step, either library."""
    bce = F.binary_cross_entropy_with_logits
    opt_d.zero_grad()
    fake = G(z)
    loss_d = bce(D(real), ones) + bce(D(fake.detach()), zeros)
    loss_d.backward()
    opt_d.step()
    opt_g.zero_grad()
    bce(D(fake), ones).backward()
    opt_g.step()


def _dcgan():
    import striate as st
    import striate.models  # noqa: F401 - st.models
    import striate.nn.functional as F

    st.manual_seed(50)
    n = 64
    real_np = np.tanh(random_array((n, DCGAN["channels"], DCGAN["size"], DCGAN["size"]), seed=50))
    z_np = random_array((n, DCGAN["z_dim"]), seed=51)
    G = st.models.DCGenerator(DCGAN["z_dim"], DCGAN["channels"], DCGAN["size"], base=DCGAN["base"])
    D = st.models.DCDiscriminator(DCGAN["channels"], DCGAN["size"], base=DCGAN["base"])
    adam = {"lr": 2e-4, "betas": (0.5, 0.999)}
    opt_g, opt_d = st.optim.Adam(G.parameters(), **adam), st.optim.Adam(D.parameters(), **adam)
    ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
    args = (st.tensor(real_np), st.tensor(z_np), st.tensor(ones), st.tensor(zeros))

    def ours():
        _gan_step(st, F, G, D, opt_g, opt_d, *args)

    if torch is None:
        return {"step": (ours, None)}
    tg, td = _twins.dcgan(torch.nn, **DCGAN)
    _twins.copy_weights(G, tg)
    _twins.copy_weights(D, td)
    _check_twins([(G, tg), (D, td)], [z_np[:4], real_np[:4]], "bench_train DCGAN")
    topt_g, topt_d = torch.optim.Adam(tg.parameters(), **adam), torch.optim.Adam(td.parameters(), **adam)
    targs = tuple(torch.from_numpy(a) for a in (real_np, z_np, ones, zeros))

    def ref():
        _gan_step(torch, torch.nn.functional, tg, td, topt_g, topt_d, *targs)

    return {"step": (ours, ref)}


def cases(quick=False):
    step = [Bench("step", "PyTorch", STEP_TARGET)]
    rows = [
        Case("LeNet-5 step (SGD)", "(64,1,28,28)", step, _lenet),
        Case("BN CNN step (Adam)", "(64,3,32,32)", step, _bn_cnn),
        Case("ResNet-18 step (SGD)", "(16,3,64,64)", step, _resnet18(64)),
        Case("U-Net step (Adam)", "(32,3,32,32)", step, _unet),
        Case("DCGAN G+D step (Adam)", "(64,1,28,28) z64", step, _dcgan),
    ]
    if not quick:
        rows.insert(3, Case("ResNet-18 step (SGD)", "(16,3,224,224)", step, _resnet18(224)))
    return rows


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
