"""``striate.cuda``: whether the GPU backend can be used on this machine."""
from ._backend import cuda_available, cuda_built

# Let fp32 convolutions on the GPU multiply on the TF32 tensor cores (compute
# capability 8.0+; 10-bit mantissa products, fp32 sums). Off by default, as
# PyTorch's torch.backends.cuda.matmul.allow_tf32; read at each call.
allow_tf32 = False


def is_available() -> bool:
    """True when striate was built with CUDA, CuPy imports and a GPU is present."""
    return cuda_available()


def is_built() -> bool:
    """True when the ``striate._cuda`` extension was compiled."""
    return cuda_built()


__all__ = ["is_available", "is_built", "allow_tf32"]
