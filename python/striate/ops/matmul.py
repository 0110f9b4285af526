"""Matrix multiply on striate's own blocked GEMM (csrc/cpu/gemm.cpp).

Used by the autograd layer for 2-D products (linear layers), so that no
second thread pool (numpy's BLAS) competes with the OpenMP kernels.
"""
from __future__ import annotations

from .._backend import is_cuda_array
from .. import _cpu
from . import _check as check


def matmul(a, b, trans_a: bool = False, trans_b: bool = False):
    """``op(a) @ op(b)`` for 2-D arrays, op = transpose when the flag is set.

    Args:
        a, b: C-contiguous 2-D float32/float64 arrays of the same dtype.

    Returns:
        (M, N) array.
    """
    op = "matmul"
    check.array(op, "a", a, ndim=2, allow_empty=True)
    check.array(op, "b", b, ndim=2, allow_empty=True)
    check.same_kind(op, "a", a, "b", b)
    trans_a = check.boolean(op, "trans_a", trans_a)
    trans_b = check.boolean(op, "trans_b", trans_b)
    M, K = (a.shape[1], a.shape[0]) if trans_a else a.shape
    Kb, N = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if K != Kb:
        raise ValueError(f"{op}: inner dimensions differ: op(a) is {M}x{K}, op(b) is {Kb}x{N}")
    if is_cuda_array(a):
        return (a.T if trans_a else a) @ (b.T if trans_b else b)
    c = check.empty(op, a, (M, N))
    if c.size:
        if K == 0:
            c[...] = 0
        else:
            _cpu.matmul(c, a, b, trans_a, trans_b)
    return c
