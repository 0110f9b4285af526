"""striate: image neural networks with hand-written C++ and CUDA kernels.

The array-level kernels live in :mod:`striate.ops`; later layers (Tensor
with autograd, nn, optim, models) build on them.
"""
from . import cuda, ops
from ._backend import get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["ops", "cuda", "set_num_threads", "get_num_threads", "__version__"]
