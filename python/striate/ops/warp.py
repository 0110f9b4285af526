"""Affine warping with ``affine_grid`` + ``grid_sample`` conventions.

Used by data augmentation, so there is no backward pass.
"""
from __future__ import annotations

from .. import _backend, _cpu
from . import _check as check

MODES = {"bilinear": 0, "nearest": 1}
PADDING_MODES = {"zeros": 0, "border": 1, "reflection": 2}


def warp_affine(x, theta, output_size=None, mode="bilinear", padding_mode="zeros",
                align_corners=False):
    """Warp each image by its own 2x3 matrix.

    Equivalent to ``grid_sample(x, affine_grid(theta, (N, C, Ho, Wo), align_corners),
    mode, padding_mode, align_corners)``: theta maps normalised output
    coordinates in [-1, 1] to normalised source coordinates.

    Args:
        x: (N, C, H, W). theta: (N, 2, 3), same dtype as x.
        output_size: (Ho, Wo); default (H, W).

    Returns:
        (N, C, Ho, Wo) array.
    """
    op = "warp_affine"
    check.array(op, "x", x)
    check.array(op, "theta", theta, ndim=3)
    check.same_kind(op, "x", x, "theta", theta)
    if tuple(theta.shape) != (x.shape[0], 2, 3):
        raise ValueError(f"{op}: theta must have shape ({x.shape[0]}, 2, 3), got {tuple(theta.shape)}")
    check.choice(op, "mode", mode, tuple(MODES))
    check.choice(op, "padding_mode", padding_mode, tuple(PADDING_MODES))
    align_corners = check.boolean(op, "align_corners", align_corners)
    if output_size is None:
        Ho, Wo = x.shape[2], x.shape[3]
    else:
        if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
            raise ValueError(f"{op}: output_size must be (Ho, Wo), got {output_size!r}")
        Ho, Wo = (check.integer(op, "output_size", v, 1) for v in output_size)
    N, C, H, W = x.shape
    y = check.empty(op, x, (N, C, Ho, Wo))
    if _backend.is_cuda_array(x):
        _backend._cuda.warp_affine_forward(y.data.ptr, x.data.ptr, theta.data.ptr, x.dtype.name, N, C, H,
                                           W, Ho, Wo, MODES[mode], PADDING_MODES[padding_mode],
                                           align_corners, _backend.cuda_stream_ptr())
    else:
        _cpu.warp_affine_forward(y, x, theta, MODES[mode], PADDING_MODES[padding_mode], align_corners)
    return y
