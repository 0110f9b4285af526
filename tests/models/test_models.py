"""striate.models: torchvision parity of the model zoo, load_pretrained, finetune, the MNIST nets.

The pretrained path is checked against PyTorch: AlexNet, VGG-11-BN and
ResNet-18 are written here, layer for layer, as torch modules with
torchvision's names (torchvision itself is not needed). Their state dicts are
saved (.safetensors via st.save, .pth via torch.save, .npz), loaded into the
striate model with ``load_pretrained``, and eval-mode outputs must agree within
1e-4 of the largest logit. Small inputs and few classes keep it quick; the
adaptive average pool makes the classifiers independent of the input size.
"""
import types

import numpy as np
import pytest

import striate as st
import striate.models as models
import striate.nn.functional as F
from striate.models import finetune, load_pretrained

TOL = 1e-4


# ------------------------------------------------------------------ torch twins
def _torch_zoo(torch):
    """torch.nn versions of torchvision's AlexNet, VGG (with BN) and ResNet-18, same names."""
    tnn = torch.nn

    class AlexNet(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 64, 11, 4, 2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(64, 192, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2),
                tnn.Conv2d(192, 384, 3, padding=1), tnn.ReLU(),
                tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(),
                tnn.Conv2d(256, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
            self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
            self.classifier = tnn.Sequential(
                tnn.Dropout(0.5), tnn.Linear(256 * 36, 4096), tnn.ReLU(),
                tnn.Dropout(0.5), tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    class VGG11BN(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            layers, c = [], 3
            for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]:
                if v == "M":
                    layers.append(tnn.MaxPool2d(2, 2))
                else:
                    layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.BatchNorm2d(v), tnn.ReLU()]
                    c = v
            self.features = tnn.Sequential(*layers)
            self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
            self.classifier = tnn.Sequential(
                tnn.Linear(512 * 49, 4096), tnn.ReLU(), tnn.Dropout(0.5),
                tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(4096, num_classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    class BasicBlock(tnn.Module):
        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(tnn.Module):
        def __init__(self, num_classes):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU()
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            inplanes = 64
            for i, planes in enumerate([64, 128, 256, 512]):
                stride = 1 if i == 0 else 2
                down = None
                if stride != 1 or inplanes != planes:
                    down = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                          tnn.BatchNorm2d(planes))
                setattr(self, f"layer{i + 1}", tnn.Sequential(BasicBlock(inplanes, planes, stride, down),
                                                              BasicBlock(planes, planes)))
                inplanes = planes
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return types.SimpleNamespace(alexnet=AlexNet, vgg11_bn=VGG11BN, resnet18=ResNet18)


@pytest.fixture(scope="module")
def zoo(torch):
    return _torch_zoo(torch)


def _randomize_batch_norm(torch, model):
    """Non-trivial BN statistics and affine terms, so the eval-mode comparison exercises them."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.num_batches_tracked.fill_(7)


def _numpy_state(torch_model):
    return {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}


def _assert_outputs_match(torch, torch_model, model, x):
    torch_model.eval()
    model.eval()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    with st.no_grad():
        actual = model(st.tensor(x)).numpy()
    assert actual.shape == expected.shape
    scale = float(np.abs(expected).max())
    assert scale > 0
    err = float(np.abs(actual - expected).max())
    assert err <= TOL * scale, f"max error {err:.3g} exceeds {TOL} x max|y| ({scale:.3g})"


# (name, striate constructor, input shape): inputs as small as the architecture allows
PARITY = [
    ("resnet18", models.resnet18, (2, 3, 64, 64)),
    ("vgg11_bn", models.vgg11_bn, (1, 3, 32, 32)),
    ("alexnet", models.alexnet, (1, 3, 96, 96)),
]


@pytest.mark.parametrize("name,build,shape", PARITY, ids=[p[0] for p in PARITY])
def test_torchvision_layout_loads_from_safetensors(torch, zoo, tmp_path, name, build, shape):
    torch.manual_seed(0)
    torch_model = getattr(zoo, name)(num_classes=10)
    _randomize_batch_norm(torch, torch_model)
    model = build(num_classes=10)
    ours = model.state_dict()
    theirs = torch_model.state_dict()
    assert list(ours) == list(theirs), "parameter/buffer names or their order differ from torchvision's"
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]

    path = tmp_path / f"{name}.safetensors"
    st.save(_numpy_state(torch_model), path)
    report = load_pretrained(model, path)
    assert report.ok and sorted(report.loaded_keys) == sorted(theirs)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    _assert_outputs_match(torch, torch_model, model, x)


@pytest.fixture(scope="module")
def resnet_pair(torch, zoo):
    torch.manual_seed(1)
    torch_model = zoo.resnet18(num_classes=5)
    _randomize_batch_norm(torch, torch_model)
    return torch_model, np.random.default_rng(2).standard_normal((1, 3, 48, 48)).astype(np.float32)


def test_pth_state_dict_and_wrapped_checkpoints(torch, resnet_pair, tmp_path):
    torch_model, x = resnet_pair
    plain, wrapped = tmp_path / "r18.pth", tmp_path / "r18_ckpt.pt"
    torch.save(torch_model.state_dict(), plain)
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in torch_model.state_dict().items()}},
               wrapped)
    for path in (plain, wrapped):
        model = models.resnet18(num_classes=5)
        assert load_pretrained(model, path).ok
        _assert_outputs_match(torch, torch_model, model, x)


def test_npz_and_model_wrapper(torch, resnet_pair, tmp_path):
    torch_model, x = resnet_pair
    npz, wrapped = tmp_path / "r18.npz", tmp_path / "r18_wrapped.safetensors"
    np.savez(npz, **_numpy_state(torch_model))
    st.save({"model": _numpy_state(torch_model), "optimizer": {"lr": 0.1}}, wrapped)
    for path in (npz, wrapped):
        model = models.resnet18(num_classes=5)
        assert load_pretrained(model, path).ok
        _assert_outputs_match(torch, torch_model, model, x)


_UNPICKLED = []


def _mark_unpickled():
    _UNPICKLED.append(True)
    return "ran"


class _Payload:
    def __reduce__(self):
        return (_mark_unpickled, ())


def test_pth_with_arbitrary_pickle_is_refused_without_running_it(torch, tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": _Payload()}, path)
    with pytest.raises(ValueError, match="refused without running it"):
        load_pretrained(models.lenet5(), path)
    assert not _UNPICKLED


def _lenet_file(tmp_path, state):
    path = tmp_path / "lenet.safetensors"
    st.save(state, path)
    return path


def test_missing_unexpected_and_wrong_shape_keys_are_reported(tmp_path):
    st.manual_seed(0)
    source = {k: v.numpy() for k, v in models.lenet5().state_dict().items()}
    del source["features.0.bias"]
    source["features.9.weight"] = np.zeros(3, np.float32)
    source["classifier.5.weight"] = np.ones((7, 84), np.float32)  # 7 classes instead of 10
    path = _lenet_file(tmp_path, source)

    model = models.lenet5()
    before = {k: v.numpy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        load_pretrained(model, path)
    message = str(info.value)
    for key in ("features.0.bias", "features.9.weight", "classifier.5.weight", "(7, 84)", "(10, 84)"):
        assert key in message
    for k, v in model.state_dict().items():  # strict: nothing copied
        assert np.array_equal(v.numpy(), before[k])

    report = load_pretrained(model, path, strict=False)
    assert not report.ok
    assert report.missing_keys == ["features.0.bias"]
    assert report.unexpected_keys == ["features.9.weight"]
    assert report.mismatched_keys == [("classifier.5.weight", (7, 84), (10, 84))]
    after = model.state_dict()
    assert np.array_equal(after["features.0.weight"].numpy(), source["features.0.weight"])
    assert np.array_equal(after["classifier.5.weight"].numpy(), before["classifier.5.weight"])
    assert np.array_equal(after["features.0.bias"].numpy(), before["features.0.bias"])
    assert "classifier.5.weight" not in report.loaded_keys


def test_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.safetensors"
    st.save([np.zeros(2, np.float32)], path)
    with pytest.raises(ValueError, match="not a state dict"):
        load_pretrained(models.lenet5(), path)


# --------------------------------------------------------------------- finetune
@pytest.mark.parametrize("build,head_name,shape", [
    (lambda: models.resnet18(num_classes=10), "fc", (2, 3, 32, 32)),
    (lambda: models.alexnet(num_classes=10), "classifier.6", (2, 3, 64, 64)),
    (models.lenet5, "classifier.5", (4, 1, 28, 28)),
    (models.inception_net, "fc", (4, 1, 28, 28)),
], ids=["resnet18", "alexnet", "lenet5", "inception_net"])
def test_finetune_trains_only_the_new_head(build, head_name, shape):
    st.manual_seed(0)
    model = build()
    assert finetune(model, num_classes=3) is model
    head = model.get_submodule(head_name)
    assert tuple(head.weight.shape)[0] == 3
    head_ids = {id(p) for p in head.parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == head_ids
    model.eval()  # fixed BN statistics and no dropout: the backbone must be exactly unchanged
    frozen = {k: v.numpy() for k, v in model.state_dict().items() if not k.startswith(head_name + ".")}
    head_before = head.weight.numpy()

    optimizer = st.optim.SGD(trainable, lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = st.tensor(rng.standard_normal(shape).astype(np.float32))
    y = st.tensor(rng.integers(0, 3, shape[0]))
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    for k, v in model.state_dict().items():
        if k in frozen:
            assert np.array_equal(v.numpy(), frozen[k]), f"frozen {k} changed"
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert not np.array_equal(head.weight.numpy(), head_before)
    assert losses[-1] < losses[0]


def test_finetune_without_freezing_keeps_everything_trainable():
    model = finetune(models.lenet5(), num_classes=4, freeze_backbone=False)
    assert all(p.requires_grad for p in model.parameters())
    assert model(st.zeros(2, 1, 28, 28)).shape == (2, 4)


# ----------------------------------------------------- torchvision parameter counts
@pytest.mark.parametrize("build,count", [
    (models.resnet18, 11_689_512), (models.resnet34, 21_797_672), (models.resnet50, 25_557_032),
    (models.alexnet, 61_100_840), (models.vgg16, 138_357_544), (models.vgg11_bn, 132_868_840),
], ids=["resnet18", "resnet34", "resnet50", "alexnet", "vgg16", "vgg11_bn"])
def test_parameter_counts_equal_torchvision(build, count):
    assert sum(p.data.size for p in build().parameters()) == count


@pytest.mark.parametrize("build,n_bn", [(models.vgg11, 0), (models.vgg13_bn, 10), (models.vgg19_bn, 16)])
def test_vgg_variants_layout(build, n_bn):
    names = list(build(num_classes=2).state_dict())
    assert sum(n.endswith("running_mean") for n in names) == n_bn
    assert names[-2:] == ["classifier.6.weight", "classifier.6.bias"]


def test_resnet50_bottleneck_names_and_forward():
    model = models.resnet50(num_classes=4).eval()
    names = model.state_dict()
    assert tuple(names["layer1.0.conv3.weight"].shape) == (256, 64, 1, 1)
    assert tuple(names["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)
    assert tuple(names["layer4.0.downsample.0.weight"].shape) == (2048, 1024, 1, 1)
    assert "layer4.2.bn3.num_batches_tracked" in names
    with st.no_grad():
        assert model(st.randn(1, 3, 32, 32)).shape == (1, 4)


# ------------------------------------------------------------ adaptive average pool
@pytest.mark.parametrize("size,out", [((14, 14), (7, 7)), ((13, 10), (6, 6)), ((1, 1), (7, 7)),
                                      ((5, 9), (3, 4)), ((6, 6), (6, 6)), ((8, 5), (1, 1))])
def test_adaptive_avg_pool_matches_torch(torch, size, out):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3) + size)
    dy = rng.standard_normal((2, 3) + out)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.adaptive_avg_pool2d(xt, out)
    yt.backward(torch.tensor(dy))
    xs = st.tensor(x, requires_grad=True)
    ys = models.AdaptiveAvgPool2d(out)(xs)
    ys.backward(st.tensor(dy))
    np.testing.assert_allclose(ys.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- MNIST-size nets
def test_lenet5_shapes_and_layout():
    model = models.lenet5()
    assert model(st.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert models.lenet5(num_classes=4, in_channels=3)(st.zeros(2, 3, 28, 28)).shape == (2, 4)
    assert sum(p.data.size for p in model.parameters()) == 120_382
    classic = models.lenet5(channels=(6, 16))
    assert sum(p.data.size for p in classic.parameters()) == 61_706
    assert classic(st.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_inception_block_concatenates_branches():
    block = models.InceptionBlock(8, 4, 3, 5, 2, 6, 7)
    x = st.randn(2, 8, 9, 11)
    y = block(x)
    assert y.shape == (2, 4 + 5 + 6 + 7, 9, 11)
    with st.no_grad():
        branch2 = block.branch2(x).numpy()
    np.testing.assert_array_equal(y.numpy()[:, 4:9], branch2)
    assert (y.numpy() >= 0).all()  # every branch ends in a ReLU


def test_inception_net_shapes():
    assert models.inception_net()(st.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert models.inception_net(num_classes=3, in_channels=3)(st.zeros(1, 3, 28, 28)).shape == (1, 3)


@pytest.mark.parametrize("build", [models.lenet5, models.inception_net], ids=["lenet5", "inception_net"])
def test_training_reduces_the_loss(build):
    st.manual_seed(0)
    model = build()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 32)
    templates = rng.standard_normal((10, 1, 28, 28))  # a learnable task: one noisy pattern per class
    x = st.tensor((templates[labels] + 0.2 * rng.random((32, 1, 28, 28))).astype(np.float32))
    y = st.tensor(labels)
    optimizer = st.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
