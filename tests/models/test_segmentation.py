"""Segmentation: SegNet's index unpooling, SegNet/U-Net parity with PyTorch twins, metrics, dice_loss.

The twins are written here layer for layer with the striate modules' names, so a
torch ``state_dict`` (as numpy) loads into the striate model unchanged. Forward
outputs, the input gradient and every parameter gradient must agree within 1e-4 of
the largest magnitude (float32).
"""
import numpy as np
import pytest

import striate as st
import striate.metrics as metrics
import striate.models as models
import striate.nn.functional as F
from striate.autograd import gradcheck
from tests.checks import tie_free

TOL = 1e-4


# ------------------------------------------------------------------ torch twins
def _torch_twins(torch):
    tnn = torch.nn

    def vgg_block(c_in, c_out):
        return tnn.Sequential(tnn.Conv2d(c_in, c_out, 3, padding=1), tnn.BatchNorm2d(c_out), tnn.ReLU(),
                              tnn.Conv2d(c_out, c_out, 3, padding=1), tnn.BatchNorm2d(c_out), tnn.ReLU())

    class SegNet(tnn.Module):
        def __init__(self, in_channels, num_classes, depth, width):
            super().__init__()
            ch = [width * 2 ** i for i in range(depth)]
            self.encoder = tnn.ModuleList([vgg_block(a, b) for a, b in zip([in_channels] + ch[:-1], ch)])
            self.decoder = tnn.ModuleList([vgg_block(a, b) for a, b in zip(ch[::-1], ch[::-1][1:] + [width])])
            self.pool = tnn.MaxPool2d(2, return_indices=True)
            self.unpool = tnn.MaxUnpool2d(2)
            self.classifier = tnn.Conv2d(width, num_classes, 1)

        def forward(self, x):
            indices, sizes = [], []
            for block in self.encoder:
                x = block(x)
                sizes.append(x.shape[-2:])
                x, i = self.pool(x)
                indices.append(i)
            for block, i, size in zip(self.decoder, indices[::-1], sizes[::-1]):
                x = block(self.unpool(x, i, output_size=size))
            return self.classifier(x)

    def double_conv(c_in, c_out, padding, bn=False):
        norm = (lambda: [tnn.BatchNorm2d(c_out)]) if bn else (lambda: [])
        return tnn.Sequential(tnn.Conv2d(c_in, c_out, 3, padding=padding), *norm(), tnn.ReLU(),
                              tnn.Conv2d(c_out, c_out, 3, padding=padding), *norm(), tnn.ReLU())

    class UNet(tnn.Module):
        def __init__(self, in_channels, num_classes, depth, base, valid, bn=False):
            super().__init__()
            pad, ch = 0 if valid else 1, [base * 2 ** i for i in range(depth + 1)]
            self.valid = valid
            self.down = tnn.ModuleList([double_conv(a, b, pad, bn)
                                        for a, b in zip([in_channels] + ch[:depth - 1], ch[:depth])])
            self.pool = tnn.MaxPool2d(2)
            self.bottleneck = double_conv(ch[depth - 1], ch[depth], pad, bn)
            self.up = tnn.ModuleList([tnn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in ch[::-1][:-1]])
            self.decode = tnn.ModuleList([double_conv(c, c // 2, pad, bn) for c in ch[::-1][:-1]])
            self.classifier = tnn.Conv2d(base, num_classes, 1)

        def forward(self, x):
            skips = []
            for block in self.down:
                x = block(x)
                skips.append(x)
                x = self.pool(x)
            x = self.bottleneck(x)
            for up, block, skip in zip(self.up, self.decode, skips[::-1]):
                x = up(x)
                h, w = x.shape[2], x.shape[3]
                top, left = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
                x = block(torch.cat([skip[:, :, top:top + h, left:left + w], x], dim=1))
            return self.classifier(x)

    return SegNet, UNet


def _close(actual, expected, what, scale=0.0):
    scale = max(float(np.abs(expected).max()), scale, 1e-12)
    err = float(np.abs(actual - expected).max())
    assert err <= TOL * scale, f"{what}: max error {err:.3g} > {TOL} * {scale:.3g}"


def _check_parity(torch, ours, twin, shape, train):
    ours.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    ours.train(train)
    twin.train(train)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    xs, xt = st.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ys, yt = ours(xs), twin(xt)
    _close(ys.numpy(), yt.detach().numpy(), "forward")
    g = np.random.default_rng(1).standard_normal(yt.shape).astype(np.float32)
    (ys * st.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    _close(xs.grad.numpy(), xt.grad.numpy(), "input grad")
    twin_params = dict(twin.named_parameters())
    bn_inputs = {f"{seq}.{i - 1}" for seq, m in twin.named_modules() if isinstance(m, torch.nn.Sequential)
                 for i, layer in enumerate(m) if isinstance(layer, torch.nn.BatchNorm2d)}
    ours_params = dict(ours.named_parameters())
    assert set(ours_params) == set(twin_params)
    for name, p in ours_params.items():
        # A conv bias followed by train-mode batch norm has an exactly zero gradient, so both sides
        # hold rounding noise: measure it against the same layer's weight gradient instead.
        module, _, kind = name.rpartition(".")
        before_bn = train and kind == "bias" and module in bn_inputs
        layer = float(np.abs(twin_params[module + ".weight"].grad.numpy()).max()) if before_bn else 0.0
        _close(p.grad.numpy(), twin_params[name].grad.numpy(), f"grad of {name}", scale=layer)
    if train:
        for name, buf in twin.state_dict().items():
            if "running" in name:
                _close(ours.state_dict()[name].numpy(), buf.numpy(), name)


# ------------------------------------------------------------------ SegNet unpooling
def test_segnet_unpools_each_value_at_the_encoders_argmax():
    model = models.segnet(in_channels=1, num_classes=2, depth=2, width=4)
    rng = np.random.default_rng(0)
    n, c, h, w = 2, 3, 8, 6
    # small noise in [0, 1), then one known maximum per 2x2 window, at a random corner
    x = rng.uniform(0, 1, (n, c, h, w)).astype(np.float32)
    corner = rng.integers(0, 4, (n, c, h // 2, w // 2))
    rows = 2 * np.arange(h // 2)[:, None] + corner // 2
    cols = 2 * np.arange(w // 2)[None, :] + corner % 2
    peaks = rng.uniform(2, 3, (n, c, h // 2, w // 2)).astype(np.float32)
    ni, ci = np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None]
    x[ni, ci, rows, cols] = peaks
    pooled, idx = model.pool(st.tensor(x))
    np.testing.assert_array_equal(pooled.numpy(), peaks)
    np.testing.assert_array_equal(idx.numpy(), rows * w + cols)
    unpooled = model.unpool(pooled, idx, output_size=(h, w)).numpy()
    expected = np.zeros_like(x)
    expected[ni, ci, rows, cols] = peaks
    np.testing.assert_array_equal(unpooled, expected)


def test_segnet_forward_encoder_keeps_indices_and_sizes():
    model = models.segnet(in_channels=3, num_classes=5, depth=2, width=4)
    features, indices, sizes = model.forward_encoder(st.tensor(np.zeros((1, 3, 16, 8), np.float32)))
    assert features.shape == (1, 8, 4, 2)
    assert [tuple(i.shape) for i in indices] == [(1, 4, 8, 4), (1, 8, 4, 2)]
    assert sizes == [(16, 8), (8, 4)]
    with pytest.raises(ValueError, match="multiples of 2"):
        model.forward_encoder(st.tensor(np.zeros((1, 3, 10, 8), np.float32)))


# ------------------------------------------------------------------ parity with PyTorch
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_segnet_matches_torch(torch, train):
    torch.manual_seed(0)
    SegNet, _ = _torch_twins(torch)
    twin = SegNet(3, 4, 2, 8)
    if not train:  # non-trivial running statistics
        for m in twin.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    _check_parity(torch, models.segnet(3, 4, depth=2, width=8), twin, (2, 3, 16, 16), train)


@pytest.mark.parametrize("valid,size", [(False, 32), (True, 44)], ids=["same", "valid"])
def test_unet_matches_torch(torch, valid, size):
    torch.manual_seed(0)
    _, UNet = _torch_twins(torch)
    _check_parity(torch, models.unet(3, 4, depth=2, base=8, valid=valid), UNet(3, 4, 2, 8, valid),
                  (1, 3, size, size), True)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_unet_with_batch_norm_matches_torch(torch, train):
    torch.manual_seed(0)
    _, UNet = _torch_twins(torch)
    twin = UNet(3, 4, 2, 8, False, bn=True)
    for m in twin.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    _check_parity(torch, models.unet(3, 4, depth=2, base=8, batch_norm=True), twin, (2, 3, 16, 16), train)


def test_unet_sizes():
    assert models.unet_output_size(572, 4, valid=True) == 388
    assert models.unet_output_size(44, 2, valid=True) == 4
    assert models.unet_output_size(48, 4, valid=False) == 48
    with pytest.raises(ValueError, match="odd or empty"):
        models.unet_output_size(46, 2, valid=True)
    with pytest.raises(ValueError, match="odd or empty"):
        models.unet(depth=2, base=4)(st.tensor(np.zeros((1, 3, 30, 32), np.float32)))


# ------------------------------------------------------------------ metrics
PRED = np.array([[[0, 0, 1], [1, 2, 2]], [[0, 1, 1], [3, 3, 0]]])
TARGET = np.array([[[0, 1, 1], [1, 2, 0]], [[0, 1, 1], [3, 0, 0]]])


def test_iou_dice_and_accuracy_by_hand():
    # class 0: pred 4 px, target 5 px, both 3; class 1: pred 4, target 5, both 4;
    # class 2: pred 2, target 1, both 1; class 3: pred 2, target 1, both 1; class 4 absent
    per_class, mean = metrics.iou(st.tensor(PRED), st.tensor(TARGET), 5)
    expected = np.array([3 / 6, 4 / 5, 1 / 2, 1 / 2, np.nan])
    np.testing.assert_allclose(per_class, expected)
    assert mean == pytest.approx(np.mean(expected[:4]))
    per_class, mean = metrics.dice(PRED, TARGET, 5)
    expected = np.array([6 / 9, 8 / 9, 2 / 3, 2 / 3, np.nan])
    np.testing.assert_allclose(per_class, expected)
    assert mean == pytest.approx(np.mean(expected[:4]))
    assert metrics.pixel_accuracy(PRED, TARGET) == pytest.approx(9 / 12)


def test_metrics_take_logits():
    logits = np.eye(5, dtype=np.float32)[PRED].transpose(0, 3, 1, 2) * 3.0
    assert metrics.pixel_accuracy(st.tensor(logits), st.tensor(TARGET)) == pytest.approx(9 / 12)
    np.testing.assert_allclose(metrics.iou(st.tensor(logits), TARGET, 5)[0], metrics.iou(PRED, TARGET, 5)[0])
    with pytest.raises(ValueError, match="target's shape"):
        metrics.pixel_accuracy(PRED[:, :1], TARGET)


def _dice_loss_numpy(logits, labels, smooth):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    t = np.eye(logits.shape[1])[labels].transpose(0, 3, 1, 2)
    score = (2 * (p * t).sum(axis=(0, 2, 3)) + smooth) / (p.sum(axis=(0, 2, 3)) + t.sum(axis=(0, 2, 3)) + smooth)
    return 1 - score.mean()


@pytest.mark.parametrize("smooth", [1.0, 0.0])
def test_dice_loss_matches_numpy_and_gradchecks(smooth):
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((2, 3, 4, 5)), rng.integers(0, 3, (2, 4, 5))
    loss = F.dice_loss(st.tensor(logits), st.tensor(labels), smooth=smooth)
    assert float(loss.numpy()) == pytest.approx(_dice_loss_numpy(logits, labels, smooth), rel=1e-12)
    onehot = np.eye(3)[labels].transpose(0, 3, 1, 2)
    probs = F.softmax(st.tensor(logits), dim=1)
    assert float(F.dice_loss(probs, st.tensor(onehot), smooth=smooth, logits=False).numpy()) == \
        pytest.approx(float(loss.numpy()), rel=1e-12)
    assert gradcheck(lambda x: F.dice_loss(x, st.tensor(labels), smooth=smooth),
                     (st.tensor(logits, requires_grad=True),))


def test_dice_loss_rejects_bad_targets():
    x = st.tensor(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="labels must lie"):
        F.dice_loss(x, st.tensor(np.full((1, 2, 2), 3)))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        F.dice_loss(x, st.tensor(np.zeros((1, 2, 3), np.int64)))


# ------------------------------------------------------------------ training smoke test
@pytest.mark.parametrize("build", [lambda: models.unet(3, 3, depth=2, base=4),
                                   lambda: models.segnet(3, 3, depth=2, width=4)], ids=["unet", "segnet"])
def test_a_few_adam_steps_reduce_the_per_pixel_cross_entropy(build):
    st.manual_seed(0)
    model = build()
    rng = np.random.default_rng(0)
    x = st.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    y = st.tensor(rng.integers(0, 3, (2, 8, 8)))
    opt = st.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------ accumulated metrics
def test_accumulated_iou_uses_the_total_counts_not_a_mean_of_batches():
    miou, mdice, confusion = metrics.MeanIoU(5), metrics.MeanDice(5), metrics.ConfusionMatrix(5)
    for m in (miou, mdice, confusion):
        m.update(PRED[:1], TARGET[:1])
        m.update(st.tensor(PRED[1:]), st.tensor(TARGET[1:]))
    np.testing.assert_allclose(miou.per_class(), metrics.iou(PRED, TARGET, 5)[0])
    assert miou.compute() == pytest.approx(metrics.iou(PRED, TARGET, 5)[1])
    assert mdice.compute() == pytest.approx(metrics.dice(PRED, TARGET, 5)[1])
    by_hand = np.zeros((5, 5), np.int64)
    np.add.at(by_hand, (TARGET.ravel(), PRED.ravel()), 1)
    np.testing.assert_array_equal(confusion.compute(), by_hand)
    batch_mean = np.mean([metrics.iou(PRED[i:i + 1], TARGET[i:i + 1], 5)[1] for i in range(2)])
    assert miou.compute() != pytest.approx(batch_mean)
    miou.reset()
    assert np.isnan(miou.compute())


def test_accumulated_metrics_reject_bad_labels():
    with pytest.raises(ValueError, match="num_classes"):
        metrics.MeanIoU(0)
    with pytest.raises(ValueError, match=r"target labels must lie in \[0, 3\)"):
        metrics.MeanIoU(3).update(np.zeros((1, 2, 2), np.int64), np.full((1, 2, 2), 3))


def test_fit_trains_segmentation_with_accumulated_iou_and_pixel_accuracy(tmp_path):
    from striate.data import DataLoader, Shapes
    from striate.train import evaluate, fit, save_segmentation_overlay

    st.manual_seed(0)
    data = Shapes(16, size=16, seed=3)
    loader = DataLoader(data, batch_size=8)
    model = models.unet(3, 4, depth=1, base=4)
    seen = []
    history = fit(model, loader, st.optim.Adam(model.parameters(), lr=1e-2), epochs=2, val_loader=loader,
                  metrics={"miou": metrics.MeanIoU(4)}, progress=False,
                  on_epoch_end=lambda epoch, m, h: seen.append((epoch, len(h))))
    assert seen == [(1, 1), (2, 2)]
    x, y = data.get_batch(np.arange(16))
    with st.no_grad():
        model.eval()
        logits = model(x)
    result = evaluate(model, loader, metrics={"miou": metrics.MeanIoU(4)})
    assert result["miou"] == pytest.approx(metrics.iou(logits, y, 4)[1])
    assert result["accuracy"] == pytest.approx(metrics.pixel_accuracy(logits, y))  # per pixel, not per image
    assert history.val_miou[-1] == pytest.approx(result["miou"])
    path = tmp_path / "overlay.png"
    save_segmentation_overlay(x[:3], y[:3], logits[:3], path, class_names=data.class_names, ious=[0.5] * 3)
    from PIL import Image
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 3 * 16 * 4
    with pytest.raises(ValueError, match="pred_masks"):
        save_segmentation_overlay(x[:3], y[:3], y[:2], path)
