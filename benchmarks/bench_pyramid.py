"""Gaussian pyramid steps against OpenCV's ``cv2.pyrDown`` / ``cv2.pyrUp``.

OpenCV works on one plane at a time, so for a batch the reference loops over
the (n, c) planes writing into one preallocated output, as a user would.
OpenCV has no adjoints; the bwd rows time striate alone.

Run alone: ``python benchmarks/bench_pyramid.py --threads 2``.
"""
from __future__ import annotations

import numpy as np

from _harness import MEMORY_BOUND_TARGET, Bench, Case, main, random_array, shape_text
from _timing import cv2

FAMILY = "pyramid"
SHAPES = [(1, 1, 2048, 2048), (64, 3, 256, 256)]


def _opencv(step, x, out_shape):
    """Calls cv2.pyrDown / cv2.pyrUp on every plane of x into a fresh output."""
    planes = x.reshape(-1, *x.shape[2:])
    dsize = (out_shape[3], out_shape[2])

    def run():
        out = np.empty((planes.shape[0],) + tuple(out_shape[2:]), dtype=x.dtype)
        for plane, dst in zip(planes, out):
            step(plane, dst=dst, dstsize=dsize)
        return out

    return run


def _setup(name, shape):
    from striate import ops

    forward, backward = {"pyr_down": (ops.pyr_down, ops.pyr_down_backward),
                         "pyr_up": (ops.pyr_up, ops.pyr_up_backward)}[name]
    x = random_array(shape, seed=1)
    dy = random_array(forward(x).shape, seed=2)
    reference = None
    if cv2 is not None:
        reference = _opencv({"pyr_down": cv2.pyrDown, "pyr_up": cv2.pyrUp}[name], x, dy.shape)
    return {"fwd": (lambda: forward(x), reference), "bwd": (lambda: backward(dy, x.shape), None)}


def cases(quick=False):
    benches = [Bench("fwd", "OpenCV", MEMORY_BOUND_TARGET), Bench("bwd", None)]
    return [Case(name, shape_text(shape), benches, lambda name=name, shape=shape: _setup(name, shape))
            for shape in SHAPES for name in ("pyr_down", "pyr_up")]


if __name__ == "__main__":
    main({FAMILY: cases}, __doc__.splitlines()[0])
