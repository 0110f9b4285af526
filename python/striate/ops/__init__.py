"""``striate.ops``: array-level kernels on numpy (CPU) or cupy (CUDA) arrays.

No autograd. Every forward has its backward next to it. Each function
validates its arguments (``ValueError`` / ``TypeError`` naming the argument),
allocates the outputs on the input's device and calls the kernel. Geometry
integers are at most 2**31 - 1, and an output or workspace larger than its
device's memory raises ``ArraySizeError`` (a ``ValueError`` and a
``MemoryError``) naming the op, before anything is allocated.
"""
from ._check import ArraySizeError
from .activation import leaky_relu, leaky_relu_backward, relu, relu_backward
from .batch_norm import batch_norm, batch_norm_backward
from .conv2d import conv2d, conv2d_backward, conv2d_reference
from .conv_transpose2d import conv_transpose2d, conv_transpose2d_backward
from .dropout import dropout, dropout_backward, philox4x32_10
from .matmul import matmul
from .pad2d import pad2d, pad2d_backward
from .pool2d import (avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
                     sum_pool2d, sum_pool2d_backward)
from .pyramid import pyr_down, pyr_down_backward, pyr_up, pyr_up_backward
from .unpool2d import max_unpool2d, max_unpool2d_backward
from .warp import warp_affine

__all__ = [
    "ArraySizeError",
    "pad2d", "pad2d_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward",
    "batch_norm", "batch_norm_backward",
    "conv2d", "conv2d_backward", "conv2d_reference",
    "conv_transpose2d", "conv_transpose2d_backward",
    "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "sum_pool2d", "sum_pool2d_backward",
    "max_unpool2d", "max_unpool2d_backward",
    "dropout", "dropout_backward", "philox4x32_10",
    "matmul",
    "pyr_down", "pyr_down_backward", "pyr_up", "pyr_up_backward",
    "warp_affine",
]
