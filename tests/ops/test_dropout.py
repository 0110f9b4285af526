"""dropout / dropout_backward: Philox4x32-10 known answers, the mask definition, statistics."""
import math

import numpy as np
import pytest

import striate
import striate.ops as ops
from tests import reference as ref
from tests.checks import DTYPES, assert_close, random_array

# Random123 kat_vectors for philox4x32_10: (counter, key, expected output).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(ops.philox4x32_10(counter, key)) == expected
    assert ref.philox4x32_10(counter, key) == expected  # validates the Python reference too


@pytest.mark.parametrize("shape", [(1,), (3,), (4,), (5,), (2, 3, 7, 9), (1, 1, 1, 1), (13, 17), (3, 1001)])
@pytest.mark.parametrize("p", (0.1, 0.5, 0.77))
@pytest.mark.parametrize("seed,offset", [(0, 0), (1234, 0), (1234, 5), (2**40 + 7, 2**33 + 3),
                                         (2**64 - 1, 2**64 - 1)])
def test_mask_matches_the_python_philox(shape, p, seed, offset):
    x = random_array(np.random.default_rng(0), shape, np.float32)
    _, mask = ops.dropout(x, p, seed, offset)
    assert mask.dtype == np.uint8 and mask.shape == shape
    expected = ref.dropout_mask(x.size, p, seed, offset).reshape(shape)
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", (0.2, 0.5))
def test_output_is_masked_and_scaled(dtype, p):
    x = random_array(np.random.default_rng(1), (4, 5, 6, 7), dtype)
    y, mask = ops.dropout(x, p, seed=99, offset=3)
    assert y.dtype == dtype and y.shape == x.shape
    scale = dtype(1.0 / (1.0 - p))  # the kernel scales in the array's precision
    np.testing.assert_array_equal(y, np.where(mask == 1, x * scale, dtype(0)))
    assert_close(y, x.astype(np.float64) * mask / (1 - p), 1e-7 if dtype == np.float32 else 1e-15,
                 1e-6 if dtype == np.float32 else 1e-14)


def test_mask_does_not_depend_on_dtype_or_values():
    rng = np.random.default_rng(2)
    masks = [ops.dropout(random_array(rng, (3, 50), dt), 0.3, 7, 11)[1] for dt in DTYPES + DTYPES]
    for m in masks[1:]:
        np.testing.assert_array_equal(m, masks[0])


def test_same_seed_and_offset_reproduce_the_mask():
    x = np.ones((64, 64), np.float32)
    a, ma = ops.dropout(x, 0.5, seed=5, offset=9)
    b, mb = ops.dropout(x, 0.5, seed=5, offset=9)
    np.testing.assert_array_equal(ma, mb)
    np.testing.assert_array_equal(a, b)
    for other in (dict(seed=5, offset=10), dict(seed=6, offset=9), dict(seed=5 + 2**32, offset=9),
                  dict(seed=5, offset=9 + 2**32)):
        _, m = ops.dropout(x, 0.5, **other)
        assert not np.array_equal(m, ma), other


def test_mask_does_not_depend_on_the_thread_count():
    x = np.ones((3, 7, 101, 103), np.float64)  # odd element count, several blocks per thread
    masks = []
    for threads in (1, 2, 1):
        striate.set_num_threads(threads)
        masks.append(ops.dropout(x, 0.4, seed=2024, offset=77)[1])
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])


@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
def test_keep_rate(p):
    n = 400_000
    _, mask = ops.dropout(np.ones(n, np.float32), p, seed=31337, offset=0)
    kept = int(mask.sum())
    mean, sigma = n * (1 - p), math.sqrt(n * p * (1 - p))
    assert abs(kept - mean) < 5 * sigma, f"kept {kept}, expected {mean:.0f} +- {sigma:.0f}"


def test_p_zero_copies():
    x = random_array(np.random.default_rng(3), (2, 3, 4, 5), np.float32)
    y, mask = ops.dropout(x, 0.0, seed=1)
    assert y is not x and not np.shares_memory(x, y)
    np.testing.assert_array_equal(y, x)
    assert mask.dtype == np.uint8 and np.all(mask == 1)
    np.testing.assert_array_equal(ops.dropout_backward(x, mask, 0.0), x)


def test_p_one_zeros():
    x = random_array(np.random.default_rng(4), (2, 3, 4, 5), np.float64)
    y, mask = ops.dropout(x, 1.0, seed=1)
    assert y.dtype == x.dtype and np.all(y == 0)
    assert mask.dtype == np.uint8 and np.all(mask == 0)
    dx = ops.dropout_backward(x, mask, 1.0)
    assert dx.dtype == x.dtype and np.all(dx == 0)


def test_tiny_probabilities_round_to_the_threshold():
    """threshold = round(p * 2**32): below half a step nothing is dropped."""
    x = np.ones(4096, np.float32)
    assert ref.dropout_threshold(1e-12) == 0
    assert np.all(ops.dropout(x, 1e-12, seed=3)[1] == 1)
    np.testing.assert_array_equal(ops.dropout(x, 2.0**-31, seed=3)[1],
                                  ref.dropout_mask(x.size, 2.0**-31, 3, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", (0.0, 0.3, 0.5, 1.0))
def test_backward(dtype, p):
    rng = np.random.default_rng(5)
    x = random_array(rng, (3, 4, 5, 6), dtype)
    dy = random_array(rng, x.shape, dtype)
    _, mask = ops.dropout(x, p, seed=8, offset=1)
    dx = ops.dropout_backward(dy, mask, p)
    assert dx.dtype == dtype
    if p == 1.0:
        assert np.all(dx == 0)
        return
    np.testing.assert_array_equal(dx, np.where(mask == 1, dy * dtype(1.0 / (1.0 - p)), dtype(0)))
    # dropout is linear in x for a fixed mask: its backward is its own map.
    np.testing.assert_array_equal(dx, ops.dropout(dy, p, seed=8, offset=1)[0])


def test_nan_input_stays_nan_where_kept():
    x = np.full((8, 8), np.nan, np.float32)
    y, mask = ops.dropout(x, 0.5, seed=1)
    assert np.all(np.isnan(y[mask == 1]))


@pytest.mark.parametrize("offset", (0, 12345))
def test_large_output_matches_the_python_philox(offset):
    """A 20 MB output (threads split it in long runs of whole groups, and a tail): sampled blocks
    against the Python Philox, and every value masked and scaled."""
    n = (5 << 20) + 3  # 20 MB of float32, and a tail past whole groups
    x = random_array(np.random.default_rng(4), (n,), np.float32)
    y, mask = ops.dropout(x, 0.3, seed=777, offset=offset)
    threshold = ref.dropout_threshold(0.3)
    blocks = np.concatenate([np.arange(4), np.random.default_rng(6).integers(0, n // 4, 300), [n // 4]])
    for b in blocks.tolist():
        words = ref.philox4x32_10((b & 0xFFFFFFFF, b >> 32, offset & 0xFFFFFFFF, offset >> 32), (777, 0))
        for u in range(4):
            if 4 * b + u < n:
                assert mask[4 * b + u] == (words[u] >= threshold), (b, u)
    np.testing.assert_array_equal(y, np.where(mask == 1, x * np.float32(1 / 0.7), np.float32(0)))
