"""Each CUDA op of striate.ops once, forward and backward, on small awkward shapes, for compute-sanitizer.

Run under the memory checker (benchmarks/gpu_check.sh does)::

    compute-sanitizer --tool memcheck --error-exitcode 86 python benchmarks/gpu_memcheck_subset.py

CuPy's memory pool is switched off, so every array is its own cudaMalloc and an access past
its end is reported. Shapes are small and odd (widths 13 and 7, not multiples of a vector
width) so that the tails of vectorised loops run; each GPU result is also compared with the
CPU kernel's. An op whose CUDA kernel is missing (NotImplementedError) is listed as skipped.
An out-of-range max_unpool2d index must raise ValueError on the GPU, without a bad write.

Exit status: 0 when every available op ran and matched the CPU, 1 otherwise, 2 without a GPU.
"""
from __future__ import annotations

import sys
import traceback

import numpy as np

RESULTS = {"ok": [], "skipped": [], "failed": []}


def _arrays(out):
    return [o for o in (out if isinstance(out, tuple) else (out,))]


def run(cp, name, fn, *args, atol=None):
    """fn(*args) on GPU copies of the array arguments, then on the CPU; outputs must agree."""
    gpu_args = [cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    try:
        gpu = fn(*gpu_args)
        cp.cuda.runtime.deviceSynchronize()  # a kernel fault is reported here, by this op
    except NotImplementedError as exc:
        RESULTS["skipped"].append(f"{name}: {str(exc).splitlines()[0]}")
        return
    except Exception as exc:  # noqa: BLE001 - every op is tried
        RESULTS["failed"].append(f"{name}: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return
    cpu = fn(*args)
    for k, (g, c) in enumerate(zip(_arrays(gpu), _arrays(cpu))):
        if (g is None) != (c is None):
            RESULTS["failed"].append(f"{name}: output {k} is None on one device only")
            return
        if c is None:
            continue
        g = cp.asnumpy(g)
        tol = atol if atol is not None else (1e-4 if c.dtype == np.float32 else 1e-10)
        if g.shape != c.shape or g.dtype != c.dtype or not np.allclose(g, c, rtol=tol, atol=tol, equal_nan=True):
            err = np.max(np.abs(g.astype(np.float64) - c)) if g.shape == c.shape else "shape"
            RESULTS["failed"].append(f"{name}: output {k} differs from the CPU ({g.shape} {g.dtype} vs "
                                     f"{c.shape} {c.dtype}; max abs diff {err})")
            return
    RESULTS["ok"].append(name)


def expect_value_error(cp, name, fn, *args):
    gpu_args = [cp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    try:
        fn(*gpu_args)
        cp.cuda.runtime.deviceSynchronize()
    except NotImplementedError as exc:
        RESULTS["skipped"].append(f"{name}: {str(exc).splitlines()[0]}")
    except ValueError:
        RESULTS["ok"].append(name)
    except Exception as exc:  # noqa: BLE001
        RESULTS["failed"].append(f"{name}: expected ValueError, got {type(exc).__name__}: {exc}")
    else:
        RESULTS["failed"].append(f"{name}: expected ValueError, nothing raised")


def main() -> int:
    import striate
    import striate.ops as ops

    if not striate.cuda.is_available():
        print("gpu_memcheck_subset.py: no usable GPU (striate.cuda.is_available() is False)", file=sys.stderr)
        return 2
    import cupy as cp

    cp.cuda.set_allocator(None)  # plain cudaMalloc per array: the checker sees each array's bounds
    cp.cuda.set_pinned_memory_allocator(None)
    rng = np.random.default_rng(0)

    for dtype in (np.float32, np.float64):
        t = np.dtype(dtype).name

        def r(*shape):
            return rng.standard_normal(shape).astype(dtype)

        x = r(2, 3, 9, 13)
        # padding
        for mode in ("constant", "reflect", "replicate", "circular"):
            pad = (1, 2, 2, 1)
            run(cp, f"pad2d {mode} {t}", lambda a: ops.pad2d(a, pad, mode, 0.5), x)
            run(cp, f"pad2d_backward {mode} {t}", lambda g: ops.pad2d_backward(g, x.shape, pad, mode),
                r(2, 3, 12, 16))
        # convolution: groups, stride, dilation, padding modes, 1x1, the 7x7 s2 stem
        xc, wc, bc = r(2, 4, 9, 13), r(6, 2, 3, 3), r(6)
        geo = dict(stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
        y = ops.conv2d(xc, wc, bc, **geo)
        run(cp, f"conv2d grouped {t}", lambda a, w, b: ops.conv2d(a, w, b, **geo), xc, wc, bc)
        run(cp, f"conv2d_backward grouped {t}",
            lambda g, a, w: ops.conv2d_backward(g, a, w, geo["stride"], geo["padding"], geo["dilation"],
                                                geo["groups"], "zeros", (True, True, True)),
            r(*y.shape), xc, wc)
        for mode in ("reflect", "replicate", "circular"):
            run(cp, f"conv2d padding_mode={mode} {t}",
                lambda a, w: ops.conv2d(a, w, None, 1, 1, padding_mode=mode), xc, r(5, 4, 3, 3))
        run(cp, f"conv2d 1x1 {t}", lambda a, w: ops.conv2d(a, w), xc, r(7, 4, 1, 1))
        xs, ws = r(1, 3, 17, 19), r(8, 3, 7, 7)
        ys = ops.conv2d(xs, ws, None, 2, 3)
        run(cp, f"conv2d 7x7 s2 {t}", lambda a, w: ops.conv2d(a, w, None, 2, 3), xs, ws)
        run(cp, f"conv2d_backward 7x7 s2 {t}",
            lambda g, a, w: ops.conv2d_backward(g, a, w, 2, 3, 1, 1, "zeros", (True, True, False)),
            r(*ys.shape), xs, ws)
        # transposed convolution
        xt, wt, bt = r(2, 4, 5, 7), r(4, 3, 3, 3), r(3)
        yt = ops.conv_transpose2d(xt, wt, bt, 2, 1, 1)
        run(cp, f"conv_transpose2d {t}", lambda a, w, b: ops.conv_transpose2d(a, w, b, 2, 1, 1), xt, wt, bt)
        run(cp, f"conv_transpose2d_backward {t}",
            lambda g, a, w: ops.conv_transpose2d_backward(g, a, w, 2, 1, 1), r(*yt.shape), xt, wt)
        # pooling
        yp, ip = ops.max_pool2d(x, 3, 2, 1, 1, True)
        run(cp, f"max_pool2d k3 s2 p1 ceil {t}", lambda a: ops.max_pool2d(a, 3, 2, 1, 1, True), x)
        run(cp, f"max_pool2d_backward k3 s2 p1 ceil {t}",
            lambda g, i: ops.max_pool2d_backward(g, i, x.shape), r(*yp.shape), ip)
        ya = ops.avg_pool2d(x, 3, 2, 1, True, False)
        run(cp, f"avg_pool2d k3 s2 p1 ceil {t}", lambda a: ops.avg_pool2d(a, 3, 2, 1, True, False), x)
        run(cp, f"avg_pool2d_backward k3 s2 p1 ceil {t}",
            lambda g: ops.avg_pool2d_backward(g, x.shape, 3, 2, 1, True, False), r(*ya.shape))
        ysum = ops.sum_pool2d(x, 2)
        run(cp, f"sum_pool2d k2 {t}", lambda a: ops.sum_pool2d(a, 2), x)
        run(cp, f"sum_pool2d_backward k2 {t}", lambda g: ops.sum_pool2d_backward(g, x.shape, 2), r(*ysum.shape))
        # unpooling, including an index outside the output plane
        y2, i2 = ops.max_pool2d(x, 2, 2)
        run(cp, f"max_unpool2d k2 {t}", lambda a, i: ops.max_unpool2d(a, i, 2, 2, output_size=(9, 13)), y2, i2)
        run(cp, f"max_unpool2d_backward k2 {t}", lambda g, i: ops.max_unpool2d_backward(g, i), r(2, 3, 9, 13), i2)
        bad = i2.copy()
        bad[1, 2, -1, -1] = 9 * 13  # one past the plane
        expect_value_error(cp, f"max_unpool2d bad index {t}",
                           lambda a, i: ops.max_unpool2d(a, i, 2, 2, output_size=(9, 13)), y2, bad)
        bad[1, 2, -1, -1] = -1
        expect_value_error(cp, f"max_unpool2d negative index {t}",
                           lambda a, i: ops.max_unpool2d(a, i, 2, 2, output_size=(9, 13)), y2, bad)
        # dropout (the mask is bit-identical, so compared exactly)
        for shape in ((7,), (2, 3, 9, 13)):
            xd = r(*shape)
            run(cp, f"dropout {shape} {t}", lambda a: ops.dropout(a, 0.3, 2**40 + 3, 5), xd, atol=0)
            mask = (rng.random(shape) > 0.3).astype(np.uint8)
            run(cp, f"dropout_backward {shape} {t}", lambda g, m: ops.dropout_backward(g, m, 0.3), r(*shape), mask,
                atol=0)
        # pyramids, odd sizes
        run(cp, f"pyr_down {t}", lambda a: ops.pyr_down(a), x)
        run(cp, f"pyr_down_backward {t}", lambda g: ops.pyr_down_backward(g, x.shape), r(2, 3, 5, 7))
        run(cp, f"pyr_up {t}", lambda a: ops.pyr_up(a, (17, 27)), x)
        run(cp, f"pyr_up_backward {t}", lambda g: ops.pyr_up_backward(g, x.shape), r(2, 3, 17, 27))
        # affine warps
        theta = np.tile(np.array([[0.9, -0.2, 0.1], [0.25, 1.1, -0.05]], dtype), (2, 1, 1))
        for mode in ("bilinear", "nearest"):
            for padding_mode in ("zeros", "border", "reflection"):
                for align in (False, True):
                    run(cp, f"warp_affine {mode} {padding_mode} align={align} {t}",
                        lambda a, th: ops.warp_affine(a, th, (11, 6), mode, padding_mode, align), x, theta)

    for kind in ("ok", "skipped", "failed"):
        print(f"{kind}: {len(RESULTS[kind])}")
        if kind != "ok":
            for line in RESULTS[kind]:
                print(f"  {line}")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
