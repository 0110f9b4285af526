"""The package imports, reports its backends honestly, and honours thread settings."""
import os
import subprocess
import sys

import pytest

import striate


def test_import_and_ops_namespace():
    import striate.ops as ops

    for name in ("pad2d", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "sum_pool2d",
                 "max_unpool2d", "dropout", "pyr_down", "pyr_up", "warp_affine"):
        assert callable(getattr(ops, name))
        if name != "warp_affine":
            assert callable(getattr(ops, name + "_backward"))


def test_cuda_extension_imports_without_a_gpu():
    """With nvcc present the build must produce striate._cuda, importable anywhere."""
    if not striate.cuda.is_built():
        if os.environ.get("STRIATE_REQUIRE_CUDA_BUILD") == "1":
            pytest.fail("STRIATE_REQUIRE_CUDA_BUILD=1 but striate._cuda was not built")
        pytest.skip("built without CUDA")
    from striate import _cuda

    assert _cuda.device_count() >= 0
    assert isinstance(striate.cuda.is_available(), bool)


def test_set_num_threads_round_trip():
    before = striate.get_num_threads()
    try:
        striate.set_num_threads(1)
        assert striate.get_num_threads() == 1
        striate.set_num_threads(2)
        assert striate.get_num_threads() == 2
    finally:
        striate.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be a positive int"):
        striate.set_num_threads(0)


def test_omp_num_threads_is_respected():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("STRIATE_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", "import striate; print(striate.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
