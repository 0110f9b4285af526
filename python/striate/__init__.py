"""striate: image neural networks with hand-written C++ and CUDA kernels.

Layers, bottom up: ``striate.ops`` (array kernels), ``striate.Tensor`` and
``striate.autograd``, ``striate.nn`` / ``striate.optim``, then models,
data and training.
"""
from . import autograd, cpu, cuda, functional, nn, ops, optim
from ._backend import get_num_threads, set_num_threads
from .autograd import no_grad, enable_grad
from .random import get_rng_state, manual_seed, set_rng_state
from .serialization import load, save
from .tensor import (Tensor, arange, cat, from_dlpack, from_numpy, ones, rand, randn, stack, tensor,
                     zeros)

__version__ = "0.1.0"
cpu._install()  # numpy arrays from here on come from striate's buffer cache (see striate.cpu)
__all__ = [
    "Tensor", "tensor", "zeros", "ones", "randn", "rand", "arange", "cat", "stack", "from_numpy",
    "from_dlpack", "manual_seed", "get_rng_state", "set_rng_state", "no_grad", "enable_grad",
    "save", "load", "autograd", "ops", "nn", "functional", "optim", "cpu", "cuda", "set_num_threads",
    "get_num_threads", "__version__",
]
