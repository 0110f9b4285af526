"""Resampling in ``striate.nn.functional``: ``interpolate``, the OpenCV-exact pyramids
(``pyr_down``/``pyr_up`` and the Gaussian/Laplacian helpers) and ``warp_affine``; re-exported there."""
from __future__ import annotations

from ..autograd.grad_mode import is_grad_enabled
from . import _functions as P
from ._checks import _bool, _int, _number, _tensor


def _pair_values(op, name, v, kind):
    values = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(values) != 2:
        raise ValueError(f"{op}: {name} must be a number or a pair for a 4-D input, got {v!r}")
    return tuple(_int(op, name, n, 1) for n in values) if kind is int else tuple(
        _number(op, name, s) for s in values)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize (N, C, H, W) input, as ``torch.nn.functional.interpolate`` (modes "nearest", "bilinear").

    Args:
        size: (H_out, W_out) or one int; or scale_factor: a number or a pair, giving
            floor(H * scale) etc. Exactly one of them.
        mode: "nearest" (source index floor(dst * scale), as torch's legacy nearest) or
            "bilinear".
        align_corners: bilinear only (default False): map corner centres to corner centres.
        recompute_scale_factor: with scale_factor, recompute the scale from the integer sizes.
        antialias: not supported (must be False).
    """
    op = "interpolate"
    _tensor(op, "input", input, 4)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"{op}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported")
    if mode == "nearest":
        if align_corners is not None:
            raise ValueError(f"{op}: align_corners can only be set with mode='bilinear'")
    else:
        align_corners = False if align_corners is None else _bool(op, "align_corners", align_corners)
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size and scale_factor must be given")
    H, W = input.shape[2:]
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is not meaningful with an explicit size")
        out, scales = _pair_values(op, "size", size, int), (None, None)
    else:
        factors = _pair_values(op, "scale_factor", scale_factor, float)
        if min(factors) <= 0:
            raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
        out = tuple(int(n * s) for n, s in zip((H, W), factors))  # floor, as torch
        if min(out) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} gives an empty output {out} for input {H}x{W}")
        scales = (None, None) if recompute_scale_factor else factors
    rows = P.resample_table(H, out[0], mode, align_corners, scales[0], input.dtype)
    cols = P.resample_table(W, out[1], mode, align_corners, scales[1], input.dtype)
    return P.Resample2d.apply(input, rows=rows, cols=cols)


def pyr_down(input, border="reflect101"):
    """Blur with the 5x5 binomial kernel and halve, like ``cv2.pyrDown`` per plane.

    Returns:
        (N, C, (H+1)//2, (W+1)//2) Tensor.
    """
    return P.PyrDown.apply(_tensor("pyr_down", "input", input, 4), border=border)


def pyr_up(input, output_size=None):
    """Upsample by two and blur, like ``cv2.pyrUp`` per plane.

    Args:
        output_size: (H_out, W_out), each 2n or, when odd, 2n - 1 / 2n + 1; default (2H, 2W).
    """
    return P.PyrUp.apply(_tensor("pyr_up", "input", input, 4), output_size=output_size)


def gaussian_pyramid(x, levels):
    """[x, pyr_down(x), pyr_down(pyr_down(x)), ...]: a list of ``levels`` images, finest first."""
    _tensor("gaussian_pyramid", "x", x, 4)
    pyramid = [x]
    for _ in range(_int("gaussian_pyramid", "levels", levels, 1) - 1):
        pyramid.append(pyr_down(pyramid[-1]))
    return pyramid


def laplacian_pyramid(x, levels):
    """Band-pass pyramid: [G_0 - up(G_1), ..., G_{L-2} - up(G_{L-1}), G_{L-1}] for the Gaussian
    levels G_k of :func:`gaussian_pyramid`; ``up`` is :func:`pyr_up` to the finer level's size,
    so odd sizes work. :func:`laplacian_reconstruct` inverts it exactly.
    """
    gaussian = gaussian_pyramid(x, levels)
    bands = [fine - pyr_up(coarse, fine.shape[2:]) for fine, coarse in zip(gaussian, gaussian[1:])]
    return bands + [gaussian[-1]]


def laplacian_reconstruct(pyramid):
    """Invert :func:`laplacian_pyramid`: I_{L-1} = pyramid[-1], I_k = pyramid[k] + up(I_{k+1}).

    Returns:
        I_0, the image.
    """
    if not isinstance(pyramid, (list, tuple)) or not pyramid:
        raise TypeError("laplacian_reconstruct: pyramid must be a non-empty list of Tensors")
    for k, level in enumerate(pyramid):
        _tensor("laplacian_reconstruct", f"pyramid[{k}]", level, 4)
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + pyr_up(image, band.shape[2:])
    return image


def warp_affine(input, theta, output_size=None, mode="bilinear", padding_mode="zeros", align_corners=False):
    """Warp each image by its 2x3 matrix: ``grid_sample(input, affine_grid(theta, ...))``.

    An augmentation op with no gradient: the result never requires grad, and calling it
    with grad mode on and an input that requires grad raises ``RuntimeError`` rather than
    silently cutting the graph (use ``.detach()`` or ``striate.no_grad()``).

    Args:
        input: (N, C, H, W). theta: (N, 2, 3) mapping normalised output coordinates to
            normalised source coordinates. output_size: (H_out, W_out), default (H, W).
        mode: "bilinear" or "nearest". padding_mode: "zeros", "border" or "reflection".
    """
    op = "warp_affine"
    _tensor(op, "input", input, 4)
    _tensor(op, "theta", theta, 3)
    if is_grad_enabled() and (input.requires_grad or theta.requires_grad):
        raise RuntimeError(f"{op} has no gradient; pass detached tensors or call it under striate.no_grad()")
    return P.WarpAffine.apply(input, theta, output_size=output_size, mode=mode, padding_mode=padding_mode,
                              align_corners=align_corners)
