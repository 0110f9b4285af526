"""CPU <-> CUDA parity of dropout: the Philox mask must be bit-identical.

Skips without a GPU (or CuPy); with STRIATE_REQUIRE_CUDA=1 a skip is a failure.
"""
import numpy as np
import pytest

import striate.ops as ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 5, 17, 9), (2, 64, 33, 31)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_bit_identical_cpu_cuda(cp, dtype, shape, p):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    y_cpu, m_cpu = ops.dropout(x, p, seed=2**40 + 17, offset=5)
    y_gpu, m_gpu = ops.dropout(cp.asarray(x), p, seed=2**40 + 17, offset=5)
    np.testing.assert_array_equal(cp.asnumpy(m_gpu), m_cpu)
    np.testing.assert_array_equal(cp.asnumpy(y_gpu), y_cpu)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    dx_cpu = ops.dropout_backward(dy, m_cpu, p)
    dx_gpu = ops.dropout_backward(cp.asarray(dy), m_gpu, p)
    np.testing.assert_array_equal(cp.asnumpy(dx_gpu), dx_cpu)
