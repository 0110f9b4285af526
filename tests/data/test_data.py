"""striate.data: DataLoader order/batching/resume/prefetch, the datasets, and the batch transforms.

Geometric transforms are checked against torch ``affine_grid`` + ``grid_sample``
with the same theta, and against exact numpy results (``np.rot90``, ``np.flip``,
shifted arrays) that pin down the geometry of the theta itself.
"""
import gzip
import io
import os
import re
import struct
import warnings

import numpy as np
import pytest

import striate as st
from striate.data import (DataLoader, Dataset, Digits, IDXDataset, ImageFolder, MNIST5k, SegmentationFolder,
                          TensorDataset, transforms as T)
from striate.data.datasets import MNIST5K_PATH
from tests.conftest import require


def _dataset(n=10):
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2) / (n * 4)
    return TensorDataset(x, np.arange(n))


def _epoch(loader):
    return [(x.numpy(), y.numpy()) for x, y in loader]


def _labels(loader):
    return np.concatenate([y.numpy() for _, y in loader])


# ---------------------------------------------------------------- DataLoader
def test_batching_and_len():
    ds = _dataset(10)
    batches = _epoch(DataLoader(ds, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 1, 2, 2), (4, 1, 2, 2), (2, 1, 2, 2)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(10))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), ds.x.numpy())
    assert len(DataLoader(ds, batch_size=4)) == 3
    assert len(DataLoader(ds, batch_size=4, drop_last=True)) == 2
    assert len(DataLoader(ds, batch_size=5, drop_last=True)) == 2
    dropped = _epoch(DataLoader(ds, batch_size=4, drop_last=True))
    assert len(dropped) == 2 and all(b[0].shape[0] == 4 for b in dropped)
    assert len(DataLoader(ds)) == 10


def test_shuffle_is_a_permutation_that_changes_per_epoch():
    loader = DataLoader(_dataset(50), batch_size=8, shuffle=True, seed=3)
    e0, e1 = _labels(loader), _labels(loader)
    np.testing.assert_array_equal(np.sort(e0), np.arange(50))
    assert not np.array_equal(e0, np.arange(50)) and not np.array_equal(e0, e1)
    assert loader.epoch == 2


def test_seeded_order_is_documented_function_of_seed_and_epoch():
    loader = DataLoader(_dataset(30), batch_size=7, shuffle=True, seed=11)
    for epoch in range(3):
        np.testing.assert_array_equal(_labels(loader), np.random.default_rng([11, epoch]).permutation(30))


def test_seeded_order_ignores_global_seed():
    st.manual_seed(1)
    a = _labels(DataLoader(_dataset(30), 4, shuffle=True, seed=5))
    st.manual_seed(2)
    b = _labels(DataLoader(_dataset(30), 4, shuffle=True, seed=5))
    np.testing.assert_array_equal(a, b)


def test_unseeded_order_follows_manual_seed():
    def two_epochs(seed):
        st.manual_seed(seed)
        loader = DataLoader(_dataset(40), 6, shuffle=True)
        return np.concatenate([_labels(loader), _labels(loader)])

    np.testing.assert_array_equal(two_epochs(7), two_epochs(7))
    assert not np.array_equal(two_epochs(7), two_epochs(8))
    st.manual_seed(7)
    expected = st.random.generator().permutation(40)
    np.testing.assert_array_equal(two_epochs(7)[:40], expected)


def test_resume_seeded_order_and_transform_bit_exactly():
    def make():
        return DataLoader(MNIST5k(train=False), 100, shuffle=True, seed=4,
                          transform=T.Compose([T.RandomAffine(15, 0.1, (0.9, 1.1), hflip=True, seed=9),
                                               T.RandomVerticalFlip(seed=2)]))

    full = make()
    runs = [_epoch(full) for _ in range(3)]
    first = make()
    _epoch(first)
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert resumed.epoch == 1
    for epoch in (1, 2):
        for (xa, ya), (xb, yb) in zip(runs[epoch], _epoch(resumed)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_resume_unseeded_order_with_rng_state():
    st.manual_seed(3)
    loader = DataLoader(_dataset(40), 6, shuffle=True, transform=T.RandomRotation(20))
    _epoch(loader)
    rng_state, loader_state = st.get_rng_state(), loader.state_dict()
    expected = _epoch(loader)
    st.manual_seed(99)
    resumed = DataLoader(_dataset(40), 6, shuffle=True, transform=T.RandomRotation(20))
    resumed.load_state_dict(loader_state)
    st.set_rng_state(rng_state)
    for (xa, ya), (xb, yb) in zip(expected, _epoch(resumed)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


@pytest.mark.parametrize("seed", [None, 5])
def test_prefetch_gives_identical_batches(seed):
    def run(prefetch):
        st.manual_seed(0)
        loader = DataLoader(MNIST5k(train=False), 64, shuffle=True, seed=seed, prefetch=prefetch,
                            transform=T.Compose([T.RandomAffine(10, 0.1, (0.9, 1.1)), T.RandomHorizontalFlip()]))
        return _epoch(loader) + _epoch(loader)

    plain, fetched = run(False), run(True)
    assert len(plain) == len(fetched) == 2 * 16
    for (xa, ya), (xb, yb) in zip(plain, fetched):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_prefetch_stops_early_and_reraises_errors():
    loader = DataLoader(_dataset(20), 2, prefetch=True)
    for i, _ in enumerate(loader):
        if i == 1:
            break  # abandoning the iterator must not hang

    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            if i == 3:
                raise KeyError("sample 3 is broken")
            return np.zeros((1, 2, 2), np.float32), i

    batches = iter(DataLoader(Broken(), 2, prefetch=True))
    next(batches)
    with pytest.raises(KeyError, match="sample 3 is broken"):
        next(batches)


def test_generic_dataset_is_stacked():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 3, 3), i / 10.0), i

    x, y = next(iter(DataLoader(Squares(), 3)))
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (3, 1, 3, 3)
    np.testing.assert_array_equal(y.numpy(), [0, 1, 2])


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(_dataset(), seed=-1)
    with pytest.raises(TypeError, match="transform"):
        DataLoader(_dataset(), transform=3)
    with pytest.raises(ValueError, match="first dimension"):
        TensorDataset(np.zeros((3, 1, 2, 2)), np.zeros(4))


# ------------------------------------------------------------------ datasets
def test_mnist5k():
    assert os.path.getsize(MNIST5K_PATH) < 3 * 2**20
    train, test = MNIST5k(train=True), MNIST5k(train=False)
    assert len(train) == 4000 and len(test) == 1000
    for ds, per_class in ((train, 400), (test, 100)):
        x, y = ds.x.numpy(), ds.y.numpy()
        assert x.shape == (len(ds), 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_array_equal(np.bincount(y, minlength=10), [per_class] * 10)
        assert 0.08 < x.mean() < 0.2  # mostly black background, white strokes
        assert np.all(x[:, :, 0, :] == 0)  # MNIST digits are centred with an empty top row
    with np.load(MNIST5K_PATH, allow_pickle=False) as f:  # the two splits never share an image
        assert len(np.unique(f["source_index"])) == 5000
    np.testing.assert_array_equal(np.round(train.x.numpy()[:5] * 255), np.round(MNIST5k().x.numpy()[:5] * 255))


def _write_idx(path, array, type_byte, compress):
    data = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data += array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 6), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    ext = ".gz" if compress else ""
    _write_idx(tmp_path / f"img{ext}", images, 0x08, compress)
    _write_idx(tmp_path / f"lab{ext}", labels, 0x08, compress)
    ds = IDXDataset(tmp_path / f"img{ext}", str(tmp_path / f"lab{ext}"))
    assert ds.x.shape == (7, 1, 5, 6) and ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.x.numpy()[:, 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.y.numpy(), labels)


def test_idx_errors(tmp_path):
    images = np.zeros((3, 4, 4), np.uint8)
    _write_idx(tmp_path / "img", images, 0x08, False)
    _write_idx(tmp_path / "lab", np.zeros(3, np.uint8), 0x08, False)
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x03" + b"\0" * 60)
    with pytest.raises(ValueError, match="not an IDX file.*12 34 08 03"):
        IDXDataset(tmp_path / "bad", tmp_path / "lab")
    (tmp_path / "short").write_bytes((tmp_path / "img").read_bytes()[:-5])
    with pytest.raises(ValueError, match="need 64 bytes, the file has 59"):
        IDXDataset(tmp_path / "short", tmp_path / "lab")
    _write_idx(tmp_path / "lab4", np.zeros(4, np.uint8), 0x08, True)
    with pytest.raises(ValueError, match="3 images but 4 labels"):
        IDXDataset(tmp_path / "img", tmp_path / "lab4")
    with pytest.raises(ValueError, match="images must be a 3-d ubyte"):
        IDXDataset(tmp_path / "lab", tmp_path / "lab")
    _write_idx(tmp_path / "float", images.astype(np.float32), 0x0D, False)
    with pytest.raises(ValueError, match="images must be a 3-d ubyte IDX file.*float32"):
        IDXDataset(tmp_path / "float", tmp_path / "lab")


def test_image_folder(tmp_path):
    Image = require("PIL.Image")
    rng = np.random.default_rng(1)
    gray = {"cat": [rng.integers(0, 256, (6, 5), dtype=np.uint8) for _ in range(2)],
            "ant": [rng.integers(0, 256, (6, 5), dtype=np.uint8)]}
    for cls, arrays in gray.items():
        (tmp_path / cls).mkdir()
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["ant", "cat"] and ds.x.shape == (3, 1, 6, 5) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.y.numpy(), [0, 1, 1])
    expected = np.stack([gray["ant"][0], gray["cat"][0], gray["cat"][1]])[:, None] / np.float32(255)
    np.testing.assert_array_equal(ds.x.numpy(), expected)

    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "cat" / "2.png")
    ds = ImageFolder(tmp_path)  # one colour image: everything is read as RGB
    assert ds.x.shape == (4, 3, 6, 5)
    np.testing.assert_array_equal(ds.x.numpy()[3], rgb.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_array_equal(ds.x.numpy()[0, 1], gray["ant"][0] / np.float32(255))

    Image.fromarray(rgb[:4]).save(tmp_path / "cat" / "3.jpg")
    with pytest.raises(ValueError, match="3.jpg' is 4x5.*pass size"):
        ImageFolder(tmp_path)
    ds = ImageFolder(tmp_path, size=(8, 7))
    assert ds.x.shape == (5, 3, 8, 7) and 0 <= ds.x.numpy().min() and ds.x.numpy().max() <= 1
    with pytest.raises(ValueError, match="holds no class folders"):
        ImageFolder(tmp_path / "ant" / ".." / "cat")


def test_image_folder_refuses_missing_and_empty_folders_naming_them(tmp_path):
    Image = require("PIL.Image")
    with pytest.raises(ValueError, match=f"ImageFolder: root '{re.escape(str(tmp_path / 'nowhere'))}' does "
                       "not exist"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ValueError, match=f"ImageFolder: root '{re.escape(str(tmp_path / 'file.png'))}' is "
                       "not a directory"):
        ImageFolder(tmp_path / "file.png")
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(ValueError, match=f"ImageFolder: root '{re.escape(str(root))}' holds no class folders"):
        ImageFolder(root)
    for name in ("ant", "bee", "cat"):
        (root / name).mkdir()
        if name != "bee":
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / name / "0.png")
    (root / "bee" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=rf"ImageFolder: class folder\(s\) '{re.escape(str(root / 'bee'))}' "
                       r"hold no \.png/\.jpg/\.jpeg/\.bmp images"):
        ImageFolder(root)  # refused, not skipped: skipping would give cat label 1 instead of 2
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "bee" / "0.png")
    np.testing.assert_array_equal(ImageFolder(root).y.numpy(), [0, 1, 2])


def _png_bytes(Image, shape=(12, 10, 3)):
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["text", "empty", "half", "header_only", "broken_stream"])
def test_unreadable_images_are_named(tmp_path, damage):
    Image = require("PIL.Image")
    good = _png_bytes(Image)
    raw = {"text": b"this is not a picture", "empty": b"", "half": good[:len(good) // 2],
           "header_only": good[:40], "broken_stream": good[:100] + bytes(200) + good[300:]}[damage]
    images, masks = tmp_path / "cls", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for name in ("a", "b"):
        (images / f"{name}.png").write_bytes(good)
        Image.fromarray(np.zeros((12, 10), np.uint8)).save(masks / f"{name}.png")
    (images / "b.png").write_bytes(raw)
    with pytest.raises(ValueError, match=f"^ImageFolder: cannot read image "
                       f"'{re.escape(str(images / 'b.png'))}': "):
        ImageFolder(tmp_path)  # class folders cls and masks
    with pytest.raises(ValueError, match=f"^SegmentationFolder: cannot read image "
                       f"'{re.escape(str(images / 'b.png'))}': "):
        SegmentationFolder(images, masks)
    (images / "b.png").write_bytes(good)
    (masks / "b.png").write_bytes(raw)
    with pytest.raises(ValueError, match=f"^SegmentationFolder: cannot read image "
                       f"'{re.escape(str(masks / 'b.png'))}': "):
        SegmentationFolder(images, masks)


def test_digits():
    pytest.importorskip("sklearn")  # scikit-learn is optional, not a reference package
    ds = Digits()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.x.numpy().min() == 0.0 and ds.x.numpy().max() == 1.0
    np.testing.assert_array_equal(np.unique(ds.y.numpy()), np.arange(10))


# ---------------------------------------------------------------- transforms
def _torch_warp(torch, x, theta):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Since version 1.3.0, affine_grid")
        grid = torch.nn.functional.affine_grid(torch.tensor(theta), list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(torch.tensor(x), grid, mode="bilinear", padding_mode="zeros",
                                           align_corners=False).numpy()


def _batch(shape=(6, 2, 9, 11), seed=0):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


GEOMETRIC = {
    "rotation": lambda seed: T.RandomRotation(30, seed=seed),
    "translate": lambda seed: T.RandomTranslate(0.2, seed=seed),
    "scale": lambda seed: T.RandomScale((0.8, 1.25), seed=seed),
    "affine": lambda seed: T.RandomAffine(degrees=(-20, 40), translate=(0.1, 0.3), scale=(0.9, 1.1),
                                          hflip=True, vflip=0.3, seed=seed),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_geometric_transforms_match_torch(name, torch):
    x = _batch()
    transform, twin = GEOMETRIC[name](7), GEOMETRIC[name](7)
    for _ in range(2):  # the second call draws new parameters
        theta = twin.sample_theta(x.shape)
        out = transform(st.tensor(x))
        assert out.dtype == np.float32 and out.shape == x.shape and not out.requires_grad
        np.testing.assert_allclose(out.numpy(), _torch_warp(torch, x, theta.astype(np.float32)), atol=2e-6)
    assert not np.allclose(theta[0], theta[1])  # per-sample draws


def test_theta_geometry_is_exact_on_the_pixel_grid():
    x = _batch((2, 3, 7, 7))
    rot = T.affine_theta(7, 7, angle=90.0)[None].repeat(2, 0).astype(np.float32)
    np.testing.assert_allclose(st.ops.warp_affine(x, rot), np.rot90(x, 1, axes=(2, 3)), atol=1e-6)
    x = _batch((2, 3, 5, 8))
    shifted = st.ops.warp_affine(x, T.affine_theta(5, 8, translate=([2.0, 2.0], [-1.0, -1.0])).astype(np.float32))
    expected = np.zeros_like(x)
    expected[:, :, :4, 2:] = x[:, :, 1:, :6]  # right by 2 px, up by 1 px
    np.testing.assert_allclose(shifted, expected, atol=1e-6)
    flips = T.affine_theta(5, 8, hflip=[True, False], vflip=[False, True]).astype(np.float32)
    out = st.ops.warp_affine(x, flips)
    np.testing.assert_allclose(out[0], np.flip(x[0], -1), atol=1e-6)
    np.testing.assert_allclose(out[1], np.flip(x[1], -2), atol=1e-6)
    zoom = T.affine_theta(4, 4, scale=2.0)  # centre crop doubled: theta halves the coordinates
    np.testing.assert_allclose(zoom, [[0.5, 0, 0], [0, 0.5, 0]], atol=1e-12)


def test_translate_stays_within_fraction():
    theta = T.RandomTranslate((0.25, 0.5), seed=0).sample_theta((200, 1, 8, 16))
    shift_px = -theta[:, :, 2] * np.array([16, 8]) / 2  # identity linear part: offset = -shift
    assert np.all(np.abs(shift_px[:, 0]) <= 4) and np.all(np.abs(shift_px[:, 1]) <= 4)
    assert np.abs(shift_px[:, 0]).max() > 3.5 and np.abs(shift_px[:, 1]).max() > 3.5


@pytest.mark.parametrize("cls,axis", [(T.RandomHorizontalFlip, -1), (T.RandomVerticalFlip, -2)])
def test_flips_match_numpy(cls, axis):
    x = _batch((40, 2, 5, 6))
    out = cls(p=0.5, seed=3)(st.tensor(x)).numpy()
    flipped = [np.array_equal(o, np.flip(xi, axis)) for o, xi in zip(out, x)]
    kept = [np.array_equal(o, xi) for o, xi in zip(out, x)]
    assert all(f != k for f, k in zip(flipped, kept))
    assert 5 < sum(flipped) < 35
    np.testing.assert_array_equal(np.array(flipped), np.random.default_rng([3, 0]).random(40) < 0.5)
    np.testing.assert_array_equal(cls(p=1.0)(st.tensor(x)).numpy(), np.flip(x, axis))
    np.testing.assert_array_equal(cls(p=0.0)(st.tensor(x)).numpy(), x)


def test_normalize_matches_numpy():
    x = _batch((3, 2, 4, 4))
    out = T.Normalize([0.5, 0.25], [0.2, 0.4])(st.tensor(x)).numpy()
    np.testing.assert_allclose(out, (x - np.array([0.5, 0.25]).reshape(1, 2, 1, 1)) /
                               np.array([0.2, 0.4]).reshape(1, 2, 1, 1), rtol=1e-6)
    np.testing.assert_allclose(T.Normalize(0.1307, 0.3081)(st.tensor(x)).numpy(), (x - 0.1307) / 0.3081,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="mean has 3 values but the batch has 2 channels"):
        T.Normalize([0, 0, 0], [1, 1, 1])(st.tensor(x))


def test_compose_applies_in_order():
    x = st.tensor(_batch((2, 1, 4, 4)))
    out = T.Compose([T.RandomVerticalFlip(p=1.0), T.Normalize(0.5, 0.5)])(x).numpy()
    np.testing.assert_allclose(out, (np.flip(x.numpy(), -2) - 0.5) / 0.5, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_seeded_and_global_transforms_are_reproducible(name):
    x = st.tensor(_batch())
    a, b = GEOMETRIC[name](1), GEOMETRIC[name](1)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    assert not np.array_equal(a(x).numpy(), GEOMETRIC[name](2)(x).numpy())
    st.manual_seed(4)
    first = GEOMETRIC[name](None)(x).numpy()
    st.manual_seed(4)
    np.testing.assert_array_equal(GEOMETRIC[name](None)(x).numpy(), first)


def test_float64_batches_and_bad_input():
    x = _batch((2, 1, 5, 5)).astype(np.float64)
    assert T.RandomRotation(10, seed=0)(st.tensor(x)).dtype == np.float64
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) batch"):
        T.RandomRotation(10)(st.tensor(x[0]))
    with pytest.raises(TypeError, match="striate Tensor"):
        T.RandomHorizontalFlip()(x)
    with pytest.raises(ValueError, match="scale must be positive"):
        T.RandomScale((0.0, 1.0))
    with pytest.raises(ValueError, match="probability"):
        T.RandomHorizontalFlip(p=1.5)
    with pytest.raises(ValueError, match="translate fractions"):
        T.RandomTranslate(2.0)


@pytest.mark.skipif(not st.cuda.is_available(), reason="needs a GPU")
def test_transforms_run_on_the_batch_device():
    x = _batch()
    t = T.Compose([T.RandomAffine(20, 0.1, (0.9, 1.1), hflip=True, seed=0), T.RandomVerticalFlip(seed=1),
                   T.Normalize(0.5, 0.2)])
    u = T.Compose([T.RandomAffine(20, 0.1, (0.9, 1.1), hflip=True, seed=0), T.RandomVerticalFlip(seed=1),
                   T.Normalize(0.5, 0.2)])
    gpu = t(st.tensor(x, device="cuda"))
    assert gpu.device == "cuda"
    np.testing.assert_allclose(gpu.numpy(), u(st.tensor(x)).numpy(), atol=1e-5)
    ds = TensorDataset(st.tensor(x, device="cuda"), st.tensor(np.arange(6), device="cuda"))
    xb, yb = next(iter(DataLoader(ds, 4, shuffle=True, seed=0)))
    assert xb.device == "cuda" and yb.device == "cuda"
    np.testing.assert_array_equal(yb.numpy(), np.random.default_rng([0, 0]).permutation(6)[:4])


def test_tensor_dataset_carries_extra_arrays_through_the_loader():
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.arange(6, dtype=np.int32)
    extra = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = TensorDataset(x, y, extra)
    assert ds.y.dtype == np.int64 and len(ds[2]) == 3
    assert np.array_equal(ds[2][2].numpy(), extra[2])
    batches = list(DataLoader(ds, 4, transform=lambda t: t * 2))
    assert [len(b) for b in batches] == [3, 3]
    assert np.array_equal(batches[0][0].numpy(), x[:4] * 2) and np.array_equal(batches[0][2].numpy(), extra[:4])
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(x, y, extra[:5])
