"""``striate.cuda``: whether the GPU backend can be used on this machine."""
from ._backend import cuda_available, cuda_built


def is_available() -> bool:
    """True when striate was built with CUDA, CuPy imports and a GPU is present."""
    return cuda_available()


def is_built() -> bool:
    """True when the ``striate._cuda`` extension was compiled."""
    return cuda_built()


__all__ = ["is_available", "is_built"]
