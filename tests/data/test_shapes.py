"""striate.data: the procedural ``Shapes`` segmentation set and ``SegmentationFolder``.

``Shapes`` is checked against its own attributes: with ``noise=0`` every
mask pixel of class k has exactly the colour of a shape of kind k; with
noise the mean colour of each shape-coloured region stays near its named colour.
"""
import time

import numpy as np
import pytest

from striate.data import DataLoader, SegmentationFolder, Shapes
from striate.data.shapes import COLOURS, KINDS, caption_of
from tests.conftest import require


def _arrays(ds, i):
    x, y = ds[i]
    return x.numpy(), y.numpy()


# ---------------------------------------------------------------- Shapes
def test_same_seed_and_index_give_identical_samples():
    a, b = Shapes(20, seed=3), Shapes(20, seed=3, cache=False)
    for i in (0, 7, 19):
        np.testing.assert_array_equal(_arrays(a, i)[0], _arrays(b, i)[0])
        np.testing.assert_array_equal(_arrays(a, i)[1], _arrays(b, i)[1])
        assert a.attributes(i) == b.attributes(i) and a.caption(i) == b.caption(i)
    # an item made on demand equals the same item made after the others
    later = Shapes(20, seed=3)
    np.testing.assert_array_equal(_arrays(later, 19)[0], _arrays(a, 19)[0])
    # the dataset length does not change the samples
    np.testing.assert_array_equal(_arrays(Shapes(100, seed=3), 7)[1], _arrays(a, 7)[1])


def test_different_seed_or_index_give_different_samples():
    a, b = Shapes(5, seed=0), Shapes(5, seed=1)
    assert not np.array_equal(_arrays(a, 0)[0], _arrays(b, 0)[0])
    assert not np.array_equal(_arrays(a, 0)[0], _arrays(a, 1)[0])


@pytest.mark.parametrize("size", [32, 48])
def test_shapes_dtypes_and_ranges(size):
    ds = Shapes(30, size=size, seed=5)
    assert len(ds) == 30 and ds.num_classes == 4
    assert ds.class_names == ("background", "ellipse", "rectangle", "triangle")
    for i in range(len(ds)):
        x, y = _arrays(ds, i)
        assert x.shape == (3, size, size) and x.dtype == np.float32
        assert y.shape == (size, size) and y.dtype == np.int64
        assert x.min() >= 0 and x.max() <= 1
        assert set(np.unique(y)) <= {0, 1, 2, 3} and (y == 0).any()
        assert 1 <= len(ds.attributes(i)) <= 3


def test_mask_classes_match_attribute_kinds():
    ds = Shapes(200, seed=2)
    counts = set()
    for i in range(len(ds)):
        kinds = {KINDS.index(s["kind"]) + 1 for s in ds.attributes(i)}
        assert set(np.unique(_arrays(ds, i)[1])) - {0} == kinds
        counts.add(len(ds.attributes(i)))
    assert counts == {1, 2, 3}
    assert {len(Shapes(50, seed=2, max_shapes=1).attributes(i)) for i in range(50)} == {1}


def test_clean_mask_pixels_have_the_colour_of_a_shape_of_that_kind():
    ds = Shapes(100, seed=4, noise=0.0)
    for i in range(len(ds)):
        x, y = _arrays(ds, i)
        for k in range(1, 4):
            allowed = {tuple(np.float32(COLOURS[s["colour"]])) for s in ds.attributes(i)
                       if s["kind"] == KINDS[k - 1]}
            pixels = {tuple(p) for p in x[:, y == k].T}
            assert pixels <= allowed, (i, k)
        # background pixels are muted: far from every named colour
        background = x[:, y == 0].T
        distance = np.linalg.norm(background[:, None, :] - np.array(list(COLOURS.values()))[None], axis=2)
        assert distance.min() > 0.35


def test_noisy_region_mean_colour_is_near_the_named_colour():
    ds = Shapes(100, seed=6)            # default noise
    clean = Shapes(100, seed=6, noise=0.0)
    checked = 0
    for i in range(len(ds)):
        x, y = _arrays(ds, i)
        x0 = _arrays(clean, i)[0]
        np.testing.assert_array_equal(_arrays(clean, i)[1], y)      # the noise does not move the shapes
        for s in ds.attributes(i):
            colour = np.float32(COLOURS[s["colour"]])
            k = KINDS.index(s["kind"]) + 1
            region = (y == k) & np.all(x0 == colour[:, None, None], axis=0)
            assert region.any()
            assert np.abs(x[:, region].mean(axis=1) - colour).max() < 0.06
            checked += 1
    assert checked > 150


def test_captions_mention_each_colour_and_kind():
    ds = Shapes(100, seed=8)
    for i in range(len(ds)):
        caption = ds.caption(i)
        assert caption.startswith("a ") and "\n" not in caption
        for s in ds.attributes(i):
            noun = "circle" if s["round"] else s["kind"]
            assert f"{s['colour']} {noun}" in caption
            assert s["size"] in ("small", "large") and s["size"] in caption
            assert s["position"] in caption
    words = " ".join(ds.caption(i) for i in range(len(ds)))
    assert all(w in words for w in ("circle", "ellipse", "rectangle", "triangle", "small", "large",
                                    "top left", "centre"))


def test_caption_of_attributes():
    shapes = [{"kind": "triangle", "colour": "red", "size": "large", "position": "top left", "round": False},
              {"kind": "ellipse", "colour": "blue", "size": "small", "position": "centre", "round": True}]
    assert caption_of(shapes) == "a large red triangle at the top left and a small blue circle in the centre"
    assert caption_of(shapes[:1]) == "a large red triangle at the top left"
    assert caption_of(shapes + shapes[:1]).count(",") == 1


def test_position_follows_the_centre():
    ds = Shapes(100, seed=9, size=30)
    for i in range(len(ds)):
        for s in ds.attributes(i):
            row, col = int(s["cy"] // 10), int(s["cx"] // 10)
            expected = ("centre" if (row, col) == (1, 1) else
                        f"{('top', 'middle', 'bottom')[row]} {('left', 'centre', 'right')[col]}")
            assert s["position"] == expected


def test_dataloader_batches_and_speed():
    ds = Shapes(70, seed=1)
    batches = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=32, shuffle=True, seed=0)]
    assert [b[0].shape for b in batches] == [(32, 3, 32, 32), (32, 3, 32, 32), (6, 3, 32, 32)]
    assert all(b[0].dtype == np.float32 and b[1].dtype == np.int64 and b[1].shape == (len(b[0]), 32, 32)
               for b in batches)
    order = np.random.default_rng([0, 0]).permutation(70)
    np.testing.assert_array_equal(batches[0][1], ds.get_batch(order[:32])[1].numpy())
    start = time.perf_counter()
    Shapes(2000, seed=0, cache=False).get_batch(np.arange(2000))
    assert time.perf_counter() - start < 4.0     # about 0.8 s on the 2-core CI machine


def test_shapes_errors():
    with pytest.raises(ValueError, match="size must be an int >= 16"):
        Shapes(10, size=4)
    with pytest.raises(ValueError, match="max_shapes"):
        Shapes(10, max_shapes=0)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        Shapes(10, noise=-0.1)
    with pytest.raises(IndexError, match="index 10 out of range for 10"):
        Shapes(10)[10]
    np.testing.assert_array_equal(_arrays(Shapes(10), -1)[1], _arrays(Shapes(10), 9)[1])


# ---------------------------------------------------------------- SegmentationFolder
def _write_pairs(Image, tmp_path, n=3, size=(6, 5), rgb=True):
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    images, masks = [], []
    for i in range(n):
        img = rng.integers(0, 256, size + ((3,) if rgb else ()), dtype=np.uint8)
        mask = rng.integers(0, 4, size, dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "images" / f"s{i}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"s{i}.png")
        images.append(img)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def test_segmentation_folder_round_trip(tmp_path):
    Image = require("PIL.Image")
    images, masks = _write_pairs(Image, tmp_path)
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    assert len(ds) == 3 and ds.stems == ["s0", "s1", "s2"] and ds.num_classes == 4
    x, y = ds.get_batch(np.arange(3))
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (3, 3, 6, 5) and y.shape == (3, 6, 5)
    np.testing.assert_allclose(x.numpy(), images.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y.numpy(), masks)
    x, y = next(iter(DataLoader(ds, batch_size=2)))
    assert x.shape == (2, 3, 6, 5) and y.shape == (2, 6, 5)
    resized = SegmentationFolder(tmp_path / "images", tmp_path / "masks", size=(4, 3))
    assert resized.x.shape == (3, 3, 4, 3) and resized.y.shape == (3, 4, 3)
    assert set(np.unique(resized.y.numpy())) <= set(np.unique(masks))


def test_segmentation_folder_grayscale_and_palette(tmp_path):
    Image = require("PIL.Image")
    images, masks = _write_pairs(Image, tmp_path, n=2, rgb=False)
    palette = Image.fromarray(masks[0]).convert("P")
    palette.save(tmp_path / "masks" / "s0.png")
    ds = SegmentationFolder(tmp_path / "images", tmp_path / "masks")
    assert ds.x.shape == (2, 1, 6, 5)
    np.testing.assert_allclose(ds.x.numpy()[:, 0], images / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y.numpy()[1], masks[1])


def test_segmentation_folder_errors(tmp_path):
    Image = require("PIL.Image")
    _write_pairs(Image, tmp_path)
    images, masks = tmp_path / "images", tmp_path / "masks"
    with pytest.raises(ValueError, match="masks_dir .* is not a directory"):
        SegmentationFolder(images, tmp_path / "nowhere")
    (masks / "s1.png").rename(masks / "other.png")
    with pytest.raises(ValueError, match=r"without a mask: \['s1'\], masks without an image: \['other'\]"):
        SegmentationFolder(images, masks)
    (masks / "other.png").rename(masks / "s1.png")
    Image.fromarray(np.zeros((7, 5), np.uint8)).save(masks / "s2.png")
    with pytest.raises(ValueError, match="is 7x5 but image .* is 6x5"):
        SegmentationFolder(images, masks)
    Image.fromarray(np.zeros((6, 5, 3), np.uint8)).save(masks / "s2.png")
    with pytest.raises(ValueError, match="must be single-channel .* got mode RGB"):
        SegmentationFolder(images, masks)
    Image.fromarray(np.zeros((6, 5), np.uint8)).save(masks / "s2.png")
    Image.fromarray(np.zeros((8, 5, 3), np.uint8)).save(images / "s2.png")
    Image.fromarray(np.zeros((8, 5), np.uint8)).save(masks / "s2.png")
    with pytest.raises(ValueError, match="pass size=.H, W. to resize"):
        SegmentationFolder(images, masks)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .png/.jpg/.jpeg images"):
        SegmentationFolder(empty, masks)
