"""GAN models: shapes and ranges of every generator/discriminator, conditional or not, and
DCGAN parity with PyTorch twins.

The twins are written layer for layer with the striate modules' names (``net``, ``embed``),
so a torch ``state_dict`` (as numpy) loads unchanged. Forward outputs, the input gradient
and every parameter gradient must agree within 1e-4 of the largest magnitude (float32).
"""
import numpy as np
import pytest

import striate as st
import striate.nn.functional as F
from striate.models import (DCDiscriminator, DCGenerator, ImageConditionedDiscriminator, ImageConditionedGenerator,
                            MLPDiscriminator, MLPGenerator, dcgan_layout)

TOL = 1e-4
Z = 6


def _z(n=4, seed=0):
    return st.tensor(np.random.default_rng(seed).standard_normal((n, Z)).astype(np.float32))


def _labels(n=4, classes=10):
    return st.tensor(np.arange(n) % classes)


def _pair(kind, conditional, size=16, channels=1):
    classes = 10 if conditional else None
    if kind == "mlp":
        shape = (channels, size, size)
        return (MLPGenerator(Z, shape, hidden=(16, 8), num_classes=classes),
                MLPDiscriminator(shape, hidden=(8, 4), num_classes=classes))
    return (DCGenerator(Z, channels, size, base=4, num_classes=classes),
            DCDiscriminator(channels, size, base=4, num_classes=classes))


@pytest.mark.parametrize("kind", ["mlp", "dc"])
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("size,channels", [(16, 1), (28, 1), (32, 3)])
def test_label_models_shapes_ranges_and_gradients(kind, conditional, size, channels):
    st.manual_seed(0)
    G, D = _pair(kind, conditional, size, channels)
    assert G.z_dim == Z and G.conditional is conditional and D.conditional is conditional
    y = _labels() if conditional else None
    x = G(_z(), y) if conditional else G(_z())
    assert x.shape == (4, channels, size, size)
    assert np.abs(x.numpy()).max() <= 1.0
    logits = D(x, y) if conditional else D(x)
    assert logits.shape == (4,)
    logits.sum().backward()
    assert all(p.grad is not None for p in list(G.parameters()) + list(D.parameters()))


def test_condition_must_match_the_model():
    G, D = _pair("dc", conditional=False)
    with pytest.raises(ValueError, match="unconditional"):
        G(_z(), _labels())
    Gc, Dc = _pair("mlp", conditional=True)
    with pytest.raises(ValueError, match="conditional"):
        Gc(_z())
    with pytest.raises(ValueError, match="conditional"):
        Dc(st.zeros(4, 1, 16, 16))


def test_dcgan_layout():
    assert [dcgan_layout(s) for s in (16, 28, 32, 64, 8)] == [(4, 2), (7, 2), (4, 3), (4, 4), (4, 1)]
    for bad in (7, 6, 0, 15, 28.0):
        with pytest.raises(ValueError, match="size must be an even int"):
            dcgan_layout(bad)


def test_label_conditioning_changes_the_outputs():
    st.manual_seed(1)
    G, D = _pair("dc", conditional=True)
    z = _z(2)
    a, b = G(z, st.tensor([0, 0])), G(z, st.tensor([3, 7]))
    assert not np.allclose(a.numpy(), b.numpy())
    x = st.randn(2, 1, 16, 16)
    assert not np.allclose(D(x, st.tensor([0, 0])).numpy(), D(x, st.tensor([3, 7])).numpy())


@pytest.mark.parametrize("scale,size", [(2, None), (2, 16), (1, None)])
@pytest.mark.parametrize("residual", [False, True])
def test_image_conditioned_pair(scale, size, residual):
    st.manual_seed(0)
    G = ImageConditionedGenerator(Z, 1, scale=scale, base=4, size=size, residual=residual)
    D = ImageConditionedDiscriminator(1, base=4, depth=2)
    assert G.conditional and G.z_dim == Z and D.conditional
    y = st.tensor(np.random.default_rng(2).uniform(-1, 1, (3, 1, 8 * (3 - scale), 8 * (3 - scale)))
                  .astype(np.float32))
    x = G(_z(3), y)
    assert x.shape == (3, 1, 16, 16)
    coarse = y if scale == 1 else F.interpolate(y, size=(16, 16), mode="bilinear")
    detail = x.numpy() - coarse.numpy() if residual else x.numpy()
    assert np.abs(detail).max() <= 1.0 + 1e-6
    logits = D(x, y)
    assert logits.shape == (3,)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters())


def test_image_conditioned_generator_checks():
    with pytest.raises(ValueError, match="residual=True needs out_channels"):
        ImageConditionedGenerator(Z, 1, out_channels=3, residual=True)
    G = ImageConditionedGenerator(Z, 1, scale=2, base=4, size=16)
    with pytest.raises(ValueError, match="must give the size 16"):
        G(_z(2), st.zeros(2, 1, 10, 10))
    with pytest.raises(ValueError, match="z_dim must be a positive int"):
        ImageConditionedGenerator(0, 1)


# ------------------------------------------------------------------ PyTorch twins
def _torch_dcgan(torch, z_dim, channels, size, base, classes):
    tnn = torch.nn
    start, doublings = dcgan_layout(size)
    width = classes or 0

    class Generator(tnn.Module):
        def __init__(self):
            super().__init__()
            if classes:
                self.embed = tnn.Embedding(classes, classes)
            c = base * 2 ** (doublings - 1)
            layers = [tnn.ConvTranspose2d(z_dim + width, c, start, bias=False), tnn.BatchNorm2d(c), tnn.ReLU()]
            for _ in range(doublings - 1):
                layers += [tnn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), tnn.BatchNorm2d(c // 2), tnn.ReLU()]
                c //= 2
            self.net = tnn.Sequential(*layers, tnn.ConvTranspose2d(c, channels, 4, 2, 1), tnn.Tanh())

        def forward(self, z, y=None):
            if classes:
                z = torch.cat([z, self.embed(y)], 1)
            return self.net(z[:, :, None, None])

    class Discriminator(tnn.Module):
        def __init__(self):
            super().__init__()
            if classes:
                self.embed = tnn.Embedding(classes, classes)
            c = base
            layers = [tnn.Conv2d(channels + width, c, 4, 2, 1), tnn.LeakyReLU(0.2)]
            for _ in range(doublings - 1):
                layers += [tnn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), tnn.BatchNorm2d(2 * c), tnn.LeakyReLU(0.2)]
                c *= 2
            self.net = tnn.Sequential(*layers, tnn.Conv2d(c, 1, start))

        def forward(self, x, y=None):
            if classes:
                planes = self.embed(y)[:, :, None, None].expand(-1, -1, *x.shape[2:])
                x = torch.cat([x, planes], 1)
            return self.net(x).reshape(-1)

    return Generator(), Discriminator()


def _close(actual, expected, what, scale=0.0):
    scale = max(float(np.abs(expected).max()), scale, 1e-12)
    err = float(np.abs(actual - expected).max())
    assert err <= TOL * scale, f"{what}: max error {err:.3g} > {TOL} * {scale:.3g}"


def _check_twin(torch, ours, twin, inputs, y):
    """Forward, the first input's gradient and every parameter gradient, in train mode."""
    ours.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    ours.train()
    twin.train()
    xs, xt = st.tensor(inputs, requires_grad=True), torch.tensor(inputs, requires_grad=True)
    ys, yt = (None, None) if y is None else (st.tensor(y), torch.tensor(y))
    out_s = ours(xs, ys) if y is not None else ours(xs)
    out_t = twin(xt, yt) if y is not None else twin(xt)
    _close(out_s.numpy(), out_t.detach().numpy(), "forward")
    g = np.random.default_rng(3).standard_normal(tuple(out_t.shape)).astype(np.float32)
    (out_s * st.tensor(g)).sum().backward()
    (out_t * torch.tensor(g)).sum().backward()
    _close(xs.grad.numpy(), xt.grad.numpy(), "input grad")
    twin_params = dict(twin.named_parameters())
    assert set(dict(ours.named_parameters())) == set(twin_params)
    for name, p in ours.named_parameters():
        _close(p.grad.numpy(), twin_params[name].grad.numpy(), f"grad of {name}")
    for name, buf in twin.state_dict().items():
        if "running" in name:
            _close(ours.state_dict()[name].numpy(), buf.numpy(), name)


@pytest.mark.parametrize("size,channels,classes", [(16, 1, None), (28, 1, 10), (32, 3, 4)])
def test_dcgan_matches_torch_twin(torch, size, channels, classes):
    torch.manual_seed(0)
    twin_g, twin_d = _torch_dcgan(torch, Z, channels, size, 4, classes)
    G = DCGenerator(Z, channels, size, base=4, num_classes=classes)
    D = DCDiscriminator(channels, size, base=4, num_classes=classes)
    rng = np.random.default_rng(0)
    y = None if classes is None else (np.arange(5) % classes).astype(np.int64)
    _check_twin(torch, G, twin_g, rng.standard_normal((5, Z)).astype(np.float32), y)
    _check_twin(torch, D, twin_d, rng.uniform(-1, 1, (5, channels, size, size)).astype(np.float32), y)
