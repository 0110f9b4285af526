"""Batch transforms for augmentation: ``x`` is a whole (N, C, H, W) Tensor.

Every transform returns a new Tensor on the batch's device and records no
autograd history. The geometric ones draw one set of parameters per sample
and warp the batch with ONE :func:`striate.ops.warp_affine` call
(``affine_grid`` + ``grid_sample`` convention, bilinear, zeros padding,
``align_corners=False`` by default). :class:`RandomHorizontalFlip` and
:class:`RandomVerticalFlip` flip by array slicing instead (exact, no
resampling); :class:`RandomAffine` folds its flips into the warp matrix.

Geometry, in pixels about the image centre (x right, y down): a sample is
flipped, scaled by ``s``, rotated counter-clockwise (as displayed) by
``angle`` degrees and shifted by ``(tx, ty)`` pixels. The matrix handed to
``warp_affine`` is the inverse of that map, written in normalised
coordinates (see :func:`affine_theta`).

Randomness. ``seed=None`` draws from ``striate.random.generator()`` (so
``st.manual_seed`` fixes it). With an int ``seed``, call ``k`` of the
transform draws from ``numpy.random.default_rng([seed, k])``; ``state_dict``
(``{"calls": k}``) lets a resumed run continue bit-exactly.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import ops
from ..random import generator
from ..tensor import Tensor, tensor


def _check_batch(name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a striate Tensor batch, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected an (N, C, H, W) batch, got shape {x.shape}")


def _range(name: str, arg: str, value, symmetric_about=None):
    """A number v -> (-v, v) (or (c - v, c + v)); a pair is taken as is."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name}: {arg} must be non-negative, got {value!r}")
        c = 0.0 if symmetric_about is None else symmetric_about
        return (c - float(value), c + float(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and value[0] <= value[1]:
        return (float(value[0]), float(value[1]))
    raise ValueError(f"{name}: {arg} must be a number or a (low, high) pair with low <= high, got {value!r}")


def _probability(name: str, arg: str, p) -> float:
    if isinstance(p, bool):
        return 0.5 if p else 0.0
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{name}: {arg} must be a probability in [0, 1], got {p!r}")
    return float(p)


def affine_theta(height, width, angle=0.0, translate=(0.0, 0.0), scale=1.0, hflip=False, vflip=False):
    """Per-sample (N, 2, 3) float64 matrices for ``warp_affine`` from pixel-space parameters.

    The forward map (source pixel -> output pixel, about the centre) is
    ``out = R(angle) @ (scale * F @ src) + t`` with ``F`` the flips and
    ``R`` a counter-clockwise (as displayed) rotation; theta is its inverse
    in the normalised coordinates of ``affine_grid`` (x, y in [-1, 1]).

    Args:
        height, width: image size in pixels.
        angle: (N,) degrees. translate: ((N,), (N,)) pixels (tx, ty).
        scale: (N,). hflip, vflip: (N,) bools. Scalars broadcast.
    """
    angle, scale = np.asarray(angle, np.float64), np.asarray(scale, np.float64)
    tx, ty = (np.asarray(t, np.float64) for t in translate)
    fx = np.where(np.asarray(hflip, bool), -1.0, 1.0)
    fy = np.where(np.asarray(vflip, bool), -1.0, 1.0)
    angle, scale, tx, ty, fx, fy = np.broadcast_arrays(angle, scale, tx, ty, fx, fy)
    a = np.deg2rad(angle)
    c, s = np.cos(a), np.sin(a)
    # inverse of R(a) @ diag(scale*fx, scale*fy) with R(a) = [[c, s], [-s, c]] (y down)
    inv = np.empty(angle.shape + (2, 2))
    inv[..., 0, 0], inv[..., 0, 1] = c / (scale * fx), -s / (scale * fx)
    inv[..., 1, 0], inv[..., 1, 1] = s / (scale * fy), c / (scale * fy)
    # normalised coordinates: x_n = x_px * 2/W, y_n = y_px * 2/H
    to_norm = np.array([2.0 / width, 2.0 / height])
    theta = np.empty(angle.shape + (2, 3))
    theta[..., :, :2] = inv * to_norm[:, None] / to_norm[None, :]
    shift = np.stack([tx, ty], axis=-1)
    theta[..., :, 2] = -np.einsum("...ij,...j->...i", inv, shift) * to_norm
    return theta


class _Seeded:
    """Random source of a transform: its own stream per call, or the global generator."""

    def __init__(self, seed):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{type(self).__name__}: seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self.calls = 0

    def _rng(self) -> np.random.Generator:
        if self.seed is None:
            return generator()
        rng = np.random.default_rng([self.seed, self.calls])
        self.calls += 1
        return rng

    def state_dict(self) -> dict:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict) -> None:
        self.calls = int(state["calls"])


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {type(t).__name__}")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def state_dict(self) -> dict:
        return {str(i): t.state_dict() for i, t in enumerate(self.transforms) if hasattr(t, "state_dict")}

    def load_state_dict(self, state: dict) -> None:
        for i, t in enumerate(self.transforms):
            if str(i) in state:
                t.load_state_dict(state[str(i)])


class Normalize:
    """``(x - mean[c]) / std[c]`` per channel; ``mean``/``std`` are numbers or per-channel sequences."""

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, np.float64))
        self.std = np.atleast_1d(np.asarray(std, np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or 1-d sequences, got {mean!r}, {std!r}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {std!r}")

    def __call__(self, x):
        _check_batch("Normalize", x)
        C = x.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, C):
                raise ValueError(f"Normalize: {name} has {v.size} values but the batch has {C} channels")
        mean = tensor(self.mean.astype(x.dtype).reshape(1, -1, 1, 1), device=x.device).data
        std = tensor(self.std.astype(x.dtype).reshape(1, -1, 1, 1), device=x.device).data
        return Tensor((x.data - mean) / std)


class _RandomFlip(_Seeded):
    axis: int  # the image axis to reverse

    def __init__(self, p=0.5, seed=None):
        super().__init__(seed)
        self.p = _probability(type(self).__name__, "p", p)

    def __call__(self, x):
        _check_batch(type(self).__name__, x)
        flip = np.flatnonzero(self._rng().random(x.shape[0]) < self.p)
        out = x.data.copy()
        if flip.size:
            idx = flip if x.device == "cpu" else tensor(flip, device=x.device).data
            reverse = [slice(None)] * 4
            reverse[self.axis] = slice(None, None, -1)
            out[idx] = x.data[idx][tuple(reverse)]
        return Tensor(out)


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each sample left-right with probability ``p`` (array slicing, exact)."""

    axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror each sample top-bottom with probability ``p`` (array slicing, exact)."""

    axis = -2


class RandomAffine(_Seeded):
    """Random flip, scale, rotation and shift per sample, in one ``warp_affine`` call.

    Args:
        degrees: rotation angle range; a number d means (-d, d).
        translate: max shift as a fraction of width and height: a number f
            or (fx, fy); each sample shifts by U(-fx*W, fx*W), U(-fy*H, fy*H) pixels.
        scale: (low, high) zoom factor range, e.g. (0.9, 1.1).
        hflip, vflip: probability of a flip (True means 0.5).
        mode, padding_mode, align_corners: passed to ``warp_affine``.
        seed: see the module docstring.

    Draw order per call (only for enabled parts): angles, tx, ty, scales,
    hflips, vflips, each a vector of N values.
    """

    def __init__(self, degrees=0, translate=None, scale=None, hflip=False, vflip=False, mode="bilinear",
                 padding_mode="zeros", align_corners=False, seed=None):
        super().__init__(seed)
        name = type(self).__name__
        self.degrees = _range(name, "degrees", degrees)
        if translate is None:
            self.translate = None
        else:
            fx, fy = (translate, translate) if isinstance(translate, numbers.Real) else tuple(translate)
            for f in (fx, fy):
                if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 <= f <= 1:
                    raise ValueError(f"{name}: translate fractions must be in [0, 1], got {translate!r}")
            self.translate = (float(fx), float(fy))
        if scale is not None:
            scale = _range(name, "scale", scale)
            if scale[0] <= 0:
                raise ValueError(f"{name}: scale must be positive, got {scale!r}")
        self.scale = scale
        self.hflip = _probability(name, "hflip", hflip)
        self.vflip = _probability(name, "vflip", vflip)
        self.mode, self.padding_mode, self.align_corners = mode, padding_mode, align_corners

    def sample_theta(self, shape) -> np.ndarray:
        """Draw the next per-sample (N, 2, 3) float64 matrices for a batch of ``shape``."""
        N, _, H, W = shape
        rng = self._rng()
        angle = rng.uniform(*self.degrees, size=N) if self.degrees != (0.0, 0.0) else np.zeros(N)
        tx, ty = np.zeros(N), np.zeros(N)
        if self.translate is not None:
            tx = rng.uniform(-1.0, 1.0, size=N) * self.translate[0] * W
            ty = rng.uniform(-1.0, 1.0, size=N) * self.translate[1] * H
        scale = rng.uniform(*self.scale, size=N) if self.scale is not None else np.ones(N)
        hflip = rng.random(N) < self.hflip if self.hflip > 0 else np.zeros(N, bool)
        vflip = rng.random(N) < self.vflip if self.vflip > 0 else np.zeros(N, bool)
        return affine_theta(H, W, angle, (tx, ty), scale, hflip, vflip)

    def __call__(self, x):
        _check_batch(type(self).__name__, x)
        theta = tensor(self.sample_theta(x.shape).astype(x.dtype), device=x.device).data
        return Tensor(ops.warp_affine(x.data, theta, mode=self.mode, padding_mode=self.padding_mode,
                                      align_corners=self.align_corners))


class RandomRotation(RandomAffine):
    """Rotate each sample by U(-degrees, degrees) (or a (low, high) range) degrees."""

    def __init__(self, degrees, seed=None, **warp):
        super().__init__(degrees=degrees, seed=seed, **warp)


class RandomTranslate(RandomAffine):
    """Shift each sample by up to ``fraction`` of its width and height (a number or (fx, fy))."""

    def __init__(self, fraction, seed=None, **warp):
        super().__init__(translate=fraction, seed=seed, **warp)


class RandomScale(RandomAffine):
    """Zoom each sample by a factor drawn from ``range`` (low, high), e.g. (0.9, 1.1)."""

    def __init__(self, range, seed=None, **warp):  # noqa: A002 - the issue's argument name
        super().__init__(scale=range, seed=seed, **warp)


__all__ = ["Compose", "Normalize", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation",
           "RandomTranslate", "RandomScale", "RandomAffine", "affine_theta"]
