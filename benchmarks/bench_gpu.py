"""Every striate op on the GPU against PyTorch CUDA (cuDNN) and CuPy, with the device's ceilings.

Times each op with CUDA events (warm-up, then the median of up to --repeats samples; fast
calls are batched so that a sample lasts about a millisecond) and reports, per row:

* striate's time, PyTorch's (cuDNN for convolution; TF32 off: allow_tf32 = False for
  matmul and cuDNN) and CuPy's where CuPy has an equivalent (a fused mask-and-scale
  kernel for dropout, reshape-mean for 2x2 average pooling, ``cupy.pad`` for padding);
* the achieved rate: GB/s for memory-bound ops (bytes = inputs read + outputs written,
  counted once) and TFLOP/s for convolution (2*N*K*Ho*Wo*C/groups*kh*kw per pass, 2 passes
  for bwd, 3 for fwd+bwd), as a percentage of the ceilings measured in the same run:
  the device copy bandwidth (the best of cudaMemcpy, a CuPy copy kernel and torch's copy of
  a 2 GiB buffer, bytes read + written) and the fp32 matmul rate (cupy.matmul 8192^3 on
  cuBLAS with CUPY_TF32=0).

A striate op whose CUDA kernel is missing (NotImplementedError) is recorded as "n/a" and
the run goes on; so does any other failure. Shapes are those of the CPU benchmarks
(bench_conv2d.py, bench_pool2d.py, bench_dropout.py, bench_pyramid.py).

    python benchmarks/bench_gpu.py                 # writes benchmarks/results/gpu-h200.{json,md}
    python benchmarks/bench_gpu.py --quick         # a few shapes, for a smoke run
    python benchmarks/bench_gpu.py --dry-run       # list the rows; no GPU needed
"""
from __future__ import annotations

import os

os.environ["CUPY_TF32"] = "0"  # before CuPy is imported: cuBLAS fp32 stays fp32

import argparse
import datetime
import json
import math
import platform
import shlex
import signal
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench_conv2d import SHAPES as CONV_SHAPES
from bench_dropout import P as DROPOUT_P
from bench_dropout import SEED as DROPOUT_SEED
from bench_dropout import SHAPES as DROPOUT_SHAPES
from bench_pool2d import KERNEL as POOL_K
from bench_pool2d import SHAPES as POOL_SHAPES
from bench_pool2d import STRIDE as POOL_S
from bench_pyramid import SHAPES as PYRAMID_SHAPES

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
MEMORY_TARGET_PCT = 70.0  # memory-bound ops: % of the measured copy bandwidth (issue 4)
CONV_TARGET_PCT = 50.0  # fp32 convolution: % of cuDNN's fp32 throughput (issue 4)
PAD_SHAPE, PAD = (64, 64, 112, 112), (1, 1, 1, 1)
CONVT_SHAPE = ((16, 128, 28, 28), 64, 4, 2, 1)  # x, out channels, kernel, stride, padding
WARP_SHAPE = (64, 3, 256, 256)


# ---------------------------------------------------------------------------------------------
# What a row times


@dataclass
class Timed:
    """One direction of one case: striate's callable, the references, and the work it does."""

    striate: Callable
    torch: Callable | None = None
    cupy: Callable | None = None
    nbytes: int | None = None  # memory-bound: bytes read + written
    flops: float | None = None  # convolution: floating-point operations
    check: Callable | None = None  # () -> (striate output, reference output), compared once


@dataclass
class Case:
    family: str
    op: str
    shape: str
    directions: tuple
    setup: Callable  # (env) -> {direction: Timed}
    torch_ref: str | None = "PyTorch"
    cupy_ref: str | None = None


@dataclass
class Env:
    cp: object
    torch: object | None
    ops: object

    def randn(self, shape, seed, scale=1.0, dtype="float32"):
        a = self.cp.random.default_rng(seed).standard_normal(shape, dtype=dtype)
        return a * a.dtype.type(scale) if scale != 1.0 else a

    def t(self, a):
        """A torch view of a cupy array (zero-copy, DLPack)."""
        return self.torch.from_dlpack(a)

    def c(self, t):
        return self.cp.from_dlpack(t)


def _text(shape) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _f32(*shapes) -> int:
    return 4 * sum(math.prod(s) for s in shapes)


# ---------------------------------------------------------------------------------------------
# Cases


def _conv_setup(x_shape, k_out, kernel, stride, padding, transposed=False):
    """conv2d (or conv_transpose2d) fwd, bwd (dx, dw, db) and fwd+bwd against cuDNN through torch."""
    def setup(env):
        ops = env.ops
        N, C, H, W = x_shape
        if transposed:
            Ho, Wo = (H - 1) * stride - 2 * padding + kernel, (W - 1) * stride - 2 * padding + kernel
            w_shape, macs = (C, k_out, kernel, kernel), N * C * H * W * k_out * kernel * kernel
            forward, backward = ops.conv_transpose2d, ops.conv_transpose2d_backward
        else:
            Ho, Wo = (H + 2 * padding - kernel) // stride + 1, (W + 2 * padding - kernel) // stride + 1
            w_shape, macs = (k_out, C, kernel, kernel), N * k_out * Ho * Wo * C * kernel * kernel
            forward, backward = ops.conv2d, ops.conv2d_backward
        x = env.randn(x_shape, 1)
        w = env.randn(w_shape, 2, 1.0 / math.sqrt(C * kernel * kernel))
        b = env.randn((k_out,), 3)
        dy = env.randn((N, k_out, Ho, Wo), 4)

        def fwd():
            return forward(x, w, b, stride, padding)

        def bwd():
            return backward(dy, x, w, stride, padding)

        out = {"fwd": Timed(fwd, flops=2.0 * macs), "bwd": Timed(bwd, flops=4.0 * macs),
               "fwd+bwd": Timed(lambda: (fwd(), bwd()), flops=6.0 * macs)}
        if env.torch is not None:
            torch, F = env.torch, env.torch.nn.functional
            xt, wt, bt, dyt = env.t(x), env.t(w), env.t(b), env.t(dy)
            torch_forward = F.conv_transpose2d if transposed else F.conv2d

            def tf():
                return torch_forward(xt, wt, bt, stride, padding)

            def tb():
                return torch.ops.aten.convolution_backward(dyt, xt, wt, [k_out], [stride] * 2, [padding] * 2,
                                                           [1, 1], transposed, [0, 0], 1, [True] * 3)

            out["fwd"].torch, out["bwd"].torch = tf, tb
            out["fwd+bwd"].torch = lambda: (tf(), tb())
            out["fwd"].check = lambda: (fwd(), env.c(tf()))
        return out
    return setup


def _pool_indices(env, x):
    """Max-pool indices (int64, flat h*W+w per plane): from torch if present, else from striate."""
    if env.torch is not None:
        _, idx = env.torch.nn.functional.max_pool2d(env.t(x), POOL_K, POOL_S, return_indices=True)
        return env.c(idx)
    return env.ops.max_pool2d(x, POOL_K, POOL_S)[1]


def _max_pool_setup(x_shape):
    def setup(env):
        ops = env.ops
        N, C, H, W = x_shape
        y_shape = (N, C, H // POOL_S, W // POOL_S)
        x, dy = env.randn(x_shape, 1), env.randn(y_shape, 2)
        idx = _pool_indices(env, x)
        out = {"fwd": Timed(lambda: ops.max_pool2d(x, POOL_K, POOL_S),
                            nbytes=_f32(x_shape, y_shape) + 8 * math.prod(y_shape)),
               "bwd": Timed(lambda: ops.max_pool2d_backward(dy, idx, x_shape),
                            nbytes=_f32(y_shape, x_shape) + 8 * math.prod(y_shape))}
        if env.torch is not None:
            torch, F = env.torch, env.torch.nn.functional
            xt, dyt, it = env.t(x), env.t(dy), env.t(idx)
            k, s = [POOL_K] * 2, [POOL_S] * 2
            out["fwd"].torch = lambda: F.max_pool2d(xt, POOL_K, POOL_S, return_indices=True)
            out["bwd"].torch = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                dyt, xt, k, s, [0, 0], [1, 1], False, it)
            out["fwd"].check = lambda: (ops.max_pool2d(x, POOL_K, POOL_S)[0],
                                        env.c(F.max_pool2d(xt, POOL_K, POOL_S)))
        return out
    return setup


def _avg_pool_setup(x_shape):
    def setup(env):
        ops, cp = env.ops, env.cp
        N, C, H, W = x_shape
        y_shape = (N, C, H // POOL_S, W // POOL_S)
        x, dy = env.randn(x_shape, 1), env.randn(y_shape, 2)
        nbytes = _f32(x_shape, y_shape)
        out = {"fwd": Timed(lambda: ops.avg_pool2d(x, POOL_K, POOL_S), nbytes=nbytes),
               "bwd": Timed(lambda: ops.avg_pool2d_backward(dy, x_shape, POOL_K, POOL_S), nbytes=nbytes)}
        if POOL_K == POOL_S == 2 and H % 2 == 0 and W % 2 == 0:  # non-overlapping 2x2 windows
            blocks = (N, C, H // 2, 2, W // 2, 2)
            out["fwd"].cupy = lambda: x.reshape(blocks).mean(axis=(3, 5))
            out["bwd"].cupy = lambda: cp.ascontiguousarray(cp.broadcast_to(
                (dy * 0.25)[:, :, :, None, :, None], blocks)).reshape(x_shape)
        if env.torch is not None:
            torch, F = env.torch, env.torch.nn.functional
            xt, dyt = env.t(x), env.t(dy)
            k, s = [POOL_K] * 2, [POOL_S] * 2
            out["fwd"].torch = lambda: F.avg_pool2d(xt, POOL_K, POOL_S)
            out["bwd"].torch = lambda: torch.ops.aten.avg_pool2d_backward(
                dyt, xt, k, s, [0, 0], False, True, None)
            out["fwd"].check = lambda: (ops.avg_pool2d(x, POOL_K, POOL_S), env.c(F.avg_pool2d(xt, POOL_K, POOL_S)))
        return out
    return setup


def _unpool_setup(x_shape):
    def setup(env):
        ops = env.ops
        N, C, H, W = x_shape
        y_shape = (N, C, H // POOL_S, W // POOL_S)
        y, dz = env.randn(y_shape, 1), env.randn(x_shape, 2)
        idx = _pool_indices(env, env.randn(x_shape, 3))
        ny = math.prod(y_shape)
        # fwd: read values + indices, write the whole output. bwd is a gather: it reads the
        # indices and the ny gradient cells they name (not all of dz), and writes ny values.
        out = {"fwd": Timed(lambda: ops.max_unpool2d(y, idx, POOL_K, POOL_S),
                            nbytes=4 * ny + 8 * ny + _f32(x_shape)),
               "bwd": Timed(lambda: ops.max_unpool2d_backward(dz, idx), nbytes=8 * ny + 4 * ny + 4 * ny)}
        if env.torch is not None:
            F = env.torch.nn.functional
            yt, it, dzt = env.t(y), env.t(idx), env.t(dz)
            out["fwd"].torch = lambda: F.max_unpool2d(yt, it, POOL_K, POOL_S)
            out["bwd"].torch = lambda: dzt.flatten(2).gather(2, it.flatten(2)).view(y_shape)
            out["fwd"].check = lambda: (ops.max_unpool2d(y, idx, POOL_K, POOL_S),
                                        env.c(F.max_unpool2d(yt, it, POOL_K, POOL_S)))
        return out
    return setup


_CUPY_MASK = None


def _cupy_mask_kernels(cp):
    """Dropout-like CuPy kernels of the same traffic (a bandwidth reference; not Philox)."""
    global _CUPY_MASK
    if _CUPY_MASK is None:
        forward = cp.ElementwiseKernel(
            "T x, float32 p, T scale, uint64 seed", "T y, uint8 m",
            "unsigned long long z = (unsigned long long)i + seed;"
            "z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL; z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;"
            "z ^= z >> 31; m = ((z >> 40) * (1.0f / 16777216.0f)) >= p; y = m ? x * scale : (T)0",
            "striate_bench_mask_forward")
        backward = cp.ElementwiseKernel("T dy, uint8 m, T scale", "T dx", "dx = m ? dy * scale : (T)0",
                                        "striate_bench_mask_backward")
        _CUPY_MASK = (forward, backward)
    return _CUPY_MASK


def _dropout_setup(shape):
    def setup(env):
        ops, cp = env.ops, env.cp
        x, dy = env.randn(shape, 1), env.randn(shape, 2)
        n = math.prod(shape)
        mask = (env.randn(shape, 3) > 0).astype(cp.uint8)
        scale = 1.0 / (1.0 - DROPOUT_P)
        out = {"fwd": Timed(lambda: ops.dropout(x, DROPOUT_P, DROPOUT_SEED), nbytes=4 * n + 4 * n + n),
               "bwd": Timed(lambda: ops.dropout_backward(dy, mask, DROPOUT_P), nbytes=4 * n + n + 4 * n)}
        fwd_k, bwd_k = _cupy_mask_kernels(cp)
        y, m, dx = cp.empty_like(x), cp.empty(shape, cp.uint8), cp.empty_like(dy)
        s32 = cp.float32(scale)
        out["fwd"].cupy = lambda: fwd_k(x, cp.float32(DROPOUT_P), s32, cp.uint64(DROPOUT_SEED), y, m)
        out["bwd"].cupy = lambda: bwd_k(dy, mask, s32, dx)
        if env.torch is not None:
            torch = env.torch
            xt, dyt, mt = env.t(x), env.t(dy), env.t(mask).bool()
            out["fwd"].torch = lambda: torch.native_dropout(xt, DROPOUT_P, True)
            out["bwd"].torch = lambda: torch.ops.aten.native_dropout_backward(dyt, mt, scale)
        return out
    return setup


def _pyramid_setup(name, shape):
    def setup(env):
        ops = env.ops
        N, C, H, W = shape
        if name == "pyr_down":
            y_shape = (N, C, (H + 1) // 2, (W + 1) // 2)
            fwd, bwd = ops.pyr_down, ops.pyr_down_backward
        else:
            y_shape = (N, C, 2 * H, 2 * W)
            fwd, bwd = ops.pyr_up, ops.pyr_up_backward
        x, dy = env.randn(shape, 1), env.randn(y_shape, 2)
        nbytes = _f32(shape, y_shape)
        out = {"fwd": Timed(lambda: fwd(x), nbytes=nbytes), "bwd": Timed(lambda: bwd(dy, shape), nbytes=nbytes)}
        if env.torch is not None and name == "pyr_down":
            # cv2.pyrDown == reflect-101 padding by 2 (torch's "reflect") + the 5x5 binomial, stride 2.
            torch, F = env.torch, env.torch.nn.functional
            planes = env.t(x).view(N * C, 1, H, W)
            taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=planes.device)
            k5 = (torch.outer(taps, taps) / 256.0).view(1, 1, 5, 5)

            def ref():
                return F.conv2d(F.pad(planes, (2, 2, 2, 2), mode="reflect"), k5, stride=2)

            out["fwd"].torch = ref
            out["fwd"].check = lambda: (fwd(x), env.c(ref()).reshape(y_shape))
        return out
    return setup


def _pad_setup(shape, pad):
    def setup(env):
        ops, cp = env.ops, env.cp
        l, r, t, b = pad
        N, C, H, W = shape
        y_shape = (N, C, H + t + b, W + l + r)
        x, dy = env.randn(shape, 1), env.randn(y_shape, 2)
        nbytes = _f32(shape, y_shape)
        out = {"fwd": Timed(lambda: ops.pad2d(x, pad, "reflect"), nbytes=nbytes, cupy=lambda: cp.pad(
                   x, ((0, 0), (0, 0), (t, b), (l, r)), mode="reflect")),
               "bwd": Timed(lambda: ops.pad2d_backward(dy, shape, pad, "reflect"), nbytes=nbytes)}
        if env.torch is not None:
            torch, F = env.torch, env.torch.nn.functional
            xt, dyt = env.t(x), env.t(dy)
            out["fwd"].torch = lambda: F.pad(xt, pad, mode="reflect")
            out["bwd"].torch = lambda: torch.ops.aten.reflection_pad2d_backward(dyt, xt, list(pad))
            out["fwd"].check = lambda: (ops.pad2d(x, pad, "reflect"), env.c(F.pad(xt, pad, mode="reflect")))
        return out
    return setup


def _warp_setup(shape):
    def setup(env):
        ops, cp = env.ops, env.cp
        N = shape[0]
        x = env.randn(shape, 1)
        angle = cp.linspace(-0.3, 0.3, N, dtype=cp.float32)
        theta = cp.zeros((N, 2, 3), cp.float32)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cp.cos(angle), -cp.sin(angle), 0.05
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = cp.sin(angle), cp.cos(angle), -0.05
        out = {"fwd": Timed(lambda: ops.warp_affine(x, theta), nbytes=_f32(shape, shape, theta.shape))}
        if env.torch is not None:
            F = env.torch.nn.functional
            xt, tt = env.t(x), env.t(theta)

            def ref():
                return F.grid_sample(xt, F.affine_grid(tt, list(shape), align_corners=False), mode="bilinear",
                                     padding_mode="zeros", align_corners=False)

            out["fwd"].torch = ref
            out["fwd"].check = lambda: (ops.warp_affine(x, theta), env.c(ref()))
        return out
    return setup


def cases(quick=False):
    pick = (lambda seq: seq[:1]) if quick else (lambda seq: seq)
    conv_shapes = [s for s in CONV_SHAPES if s[0] in ((64, 32, 28, 28), (32, 3, 224, 224))] if quick else CONV_SHAPES
    result = []
    for x_shape, k_out, kernel, stride, padding in conv_shapes:
        op = f"conv2d {kernel}x{kernel}" + (f" s{stride}" if stride != 1 else "") + f" p{padding}"
        result.append(Case("conv2d", op, f"{_text(x_shape)}->{k_out}", ("fwd", "bwd", "fwd+bwd"),
                           _conv_setup(x_shape, k_out, kernel, stride, padding), "PyTorch (cuDNN)"))
    x_shape, k_out, kernel, stride, padding = CONVT_SHAPE
    result.append(Case("conv_transpose2d", f"conv_transpose2d {kernel}x{kernel} s{stride} p{padding}",
                       f"{_text(x_shape)}->{k_out}", ("fwd", "bwd", "fwd+bwd"),
                       _conv_setup(x_shape, k_out, kernel, stride, padding, transposed=True), "PyTorch (cuDNN)"))
    for shape in pick(POOL_SHAPES):
        result.append(Case("pool2d", f"max_pool2d k{POOL_K} s{POOL_S}", _text(shape), ("fwd", "bwd"),
                           _max_pool_setup(shape)))
        result.append(Case("pool2d", f"avg_pool2d k{POOL_K} s{POOL_S}", _text(shape), ("fwd", "bwd"),
                           _avg_pool_setup(shape), cupy_ref="CuPy reshape-mean"))
        pooled = shape[:2] + (shape[2] // POOL_S, shape[3] // POOL_S)
        result.append(Case("unpool2d", f"max_unpool2d k{POOL_K} s{POOL_S}",
                           f"{_text(pooled)}->{_text(shape[2:])}", ("fwd", "bwd"), _unpool_setup(shape)))
    for shape in DROPOUT_SHAPES:
        result.append(Case("dropout", f"dropout p={DROPOUT_P:g}", _text(shape), ("fwd", "bwd"),
                           _dropout_setup(shape), cupy_ref="CuPy mask kernel"))
    for shape in pick(PYRAMID_SHAPES):
        result.append(Case("pyramid", "pyr_down", _text(shape), ("fwd", "bwd"), _pyramid_setup("pyr_down", shape),
                           "PyTorch (pad+conv)"))
        result.append(Case("pyramid", "pyr_up", _text(shape), ("fwd", "bwd"), _pyramid_setup("pyr_up", shape),
                           None))
    result.append(Case("pad2d", "pad2d reflect 1", _text(PAD_SHAPE), ("fwd", "bwd"), _pad_setup(PAD_SHAPE, PAD),
                       cupy_ref="cupy.pad"))
    result.append(Case("warp", "warp_affine bilinear", _text(WARP_SHAPE), ("fwd",), _warp_setup(WARP_SHAPE),
                       "PyTorch (affine_grid+grid_sample)"))
    return result


# ---------------------------------------------------------------------------------------------
# Timing with CUDA events


@dataclass
class Timing:
    median_ms: float | None = None
    min_ms: float | None = None
    samples_ms: list = field(default_factory=list)
    calls_per_sample: int = 0
    error: str | None = None
    missing: bool = False  # NotImplementedError: the kernel is not there yet


def _cupy_events(cp):
    def pair():
        return cp.cuda.Event(), cp.cuda.Event()

    def elapsed(start, end):
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end)

    return pair, elapsed


def _torch_events(torch):
    def pair():
        return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def elapsed(start, end):
        end.synchronize()
        return start.elapsed_time(end)

    return pair, elapsed


def time_gpu(fn, events, repeats, warmup, sample_ms=1.0, budget_ms=1500.0) -> Timing:
    """Median per-call device time of fn, measured between CUDA events.

    Calls are batched (up to 64 per sample) so that a sample lasts about sample_ms, and the
    number of samples is cut (to 3 at least) when a row would take more than budget_ms.
    """
    timing = Timing()
    pair, elapsed = events
    try:
        for _ in range(max(1, warmup)):
            start, end = pair()
            start.record()
            fn()
            end.record()
            if elapsed(start, end) > 250.0:  # a very slow call: no more warm-up than the first
                break
        start, end = pair()
        start.record()
        fn()
        end.record()
        single = max(elapsed(start, end), 1e-4)
        inner = max(1, min(64, math.ceil(sample_ms / single)))
        repeats = max(1 if single > 1000.0 else 3, min(repeats, int(budget_ms / (single * inner))))
        for _ in range(repeats):
            start, end = pair()
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            timing.samples_ms.append(elapsed(start, end) / inner)
    except NotImplementedError as exc:
        timing.missing, timing.error = True, str(exc).splitlines()[0][:160]
        return timing
    except Exception as exc:  # noqa: BLE001 - recorded in the row; the run goes on
        timing.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return timing
    timing.calls_per_sample = inner
    timing.median_ms = statistics.median(timing.samples_ms)
    timing.min_ms = min(timing.samples_ms)
    return timing


def measure_ceilings(cp, torch, repeats, warmup):
    """Device copy bandwidth (GB/s, bytes read + written) and fp32 matmul rate (TFLOP/s)."""
    events = _cupy_events(cp)
    result = {}
    n = 1 << 29  # 2 GiB of float32 per buffer: far beyond the 60 MB L2
    a = cp.random.default_rng(0).standard_normal(n, dtype=cp.float32)
    b = cp.empty_like(a)
    copy_kernel = cp.ElementwiseKernel("T x", "T y", "y = x", "striate_bench_copy")
    copies = {"cudaMemcpy (cupy)": lambda: b.data.copy_from_device_async(a.data, a.nbytes),
              "copy kernel (cupy)": lambda: copy_kernel(a, b)}
    if torch is not None:
        ta, tb = torch.from_dlpack(a), torch.from_dlpack(b)
        copies["Tensor.copy_ (torch)"] = lambda: tb.copy_(ta)
    rates = {}
    for name, fn in copies.items():
        t = time_gpu(fn, events, repeats, warmup, budget_ms=1000)
        rates[name] = 2 * a.nbytes / (t.median_ms * 1e-3) / 1e9 if t.median_ms else None
    best = max(((v, k) for k, v in rates.items() if v), default=(None, None))
    result["copy_gbs"], result["copy_method"], result["copy_all_gbs"] = best[0], best[1], rates
    del a, b
    m = 8192
    rng = cp.random.default_rng(1)
    x, y = rng.standard_normal((m, m), dtype=cp.float32), rng.standard_normal((m, m), dtype=cp.float32)
    z = cp.empty_like(x)
    flops = 2.0 * m ** 3
    t = time_gpu(lambda: cp.matmul(x, y, out=z), events, min(repeats, 10), warmup, budget_ms=2000)
    result["matmul_tflops"] = flops / (t.median_ms * 1e-3) / 1e12 if t.median_ms else None
    result["matmul_method"] = f"cupy.matmul {m}^3 fp32 (cuBLAS, CUPY_TF32=0)"
    if torch is not None:
        tx, ty = torch.from_dlpack(x), torch.from_dlpack(y)
        tt = time_gpu(lambda: torch.mm(tx, ty), _torch_events(torch), min(repeats, 10), warmup, budget_ms=2000)
        result["torch_matmul_tflops"] = flops / (tt.median_ms * 1e-3) / 1e12 if tt.median_ms else None
    del x, y, z
    cp.get_default_memory_pool().free_all_blocks()
    return result


def _rel_err(cp, a, b) -> float:
    a, b = cp.asarray(a, dtype=cp.float64), cp.asarray(b, dtype=cp.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(cp.linalg.norm(a - b) / max(float(cp.linalg.norm(b)), 1e-30))


def _unit(timed: Timed):
    return "TFLOP/s" if timed.flops is not None else "GB/s" if timed.nbytes is not None else None


def _rate(timed: Timed, ms):
    """Work per second at ms per call: TFLOP/s for convolution, GB/s for memory-bound ops."""
    if ms is None or _unit(timed) is None:
        return None
    return timed.flops / (ms * 1e-3) / 1e12 if timed.flops is not None else timed.nbytes / (ms * 1e-3) / 1e9


class Interrupted(BaseException):
    """SIGTERM (e.g. from ``timeout``): stop timing and write what was measured."""


def _raise_interrupted(signum, frame):
    raise Interrupted()


def run(env, case_list, ceilings, repeats, warmup, budget_s):
    """Times every case; returns the rows (cut short, with a note, if SIGTERM arrives)."""
    rows = []
    try:
        _run_cases(env, case_list, ceilings, repeats, warmup, budget_s, rows)
    except Interrupted:
        rows += _untimed_rows(case_list, {(r["op"], r["shape"], r["direction"]) for r in rows})
    return rows


def _untimed_rows(case_list, done=frozenset()):
    return [{"family": c.family, "op": c.op, "shape": c.shape, "direction": d, "reference": c.torch_ref,
             "cupy_reference": c.cupy_ref, "notes": ["not timed: interrupted (SIGTERM)"]}
            for c in case_list for d in c.directions if (c.op, c.shape, d) not in done]


def _run_cases(env, case_list, ceilings, repeats, warmup, budget_s, rows):
    cp, torch = env.cp, env.torch
    cupy_ev = _cupy_events(cp)
    torch_ev = _torch_events(torch) if torch is not None else None
    started = time.monotonic()
    for case in case_list:
        over = time.monotonic() - started > budget_s
        try:
            timed = {} if over else case.setup(env)
            setup_error = "skipped: the time budget (--budget-s) is spent" if over else None
        except NotImplementedError as exc:
            timed, setup_error = {}, f"n/a: {exc}".splitlines()[0][:200]
        except Exception as exc:  # noqa: BLE001
            timed, setup_error = {}, f"setup failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        for direction in case.directions:
            row = {"family": case.family, "op": case.op, "shape": case.shape, "direction": direction,
                   "reference": case.torch_ref, "cupy_reference": case.cupy_ref, "notes": []}
            t = timed.get(direction)
            if t is None:
                row["notes"].append(setup_error or "not set up")
                rows.append(row)
                continue
            row["reference"] = case.torch_ref if t.torch is not None else None
            row["cupy_reference"] = case.cupy_ref if t.cupy is not None else None
            ours = time_gpu(t.striate, cupy_ev, repeats, warmup)
            ref = time_gpu(t.torch, torch_ev, repeats, warmup) if t.torch is not None else None
            cref = time_gpu(t.cupy, cupy_ev, repeats, warmup) if t.cupy is not None else None
            if ours.missing:
                row["notes"].append(f"n/a: {ours.error}")
            elif ours.error:
                row["notes"].append(f"striate failed: {ours.error}")
            for name, tm in (("PyTorch", ref), ("CuPy", cref)):
                if tm is not None and tm.error:
                    row["notes"].append(f"{name} failed: {tm.error}")
            if t.check is not None and ours.median_ms is not None:
                try:
                    row["rel_err_vs_reference"] = _rel_err(cp, *t.check())
                except Exception as exc:  # noqa: BLE001
                    row["notes"].append(f"check failed: {type(exc).__name__}: {exc}".splitlines()[0][:200])
            rate, unit = _rate(t, ours.median_ms), _unit(t)
            ref_rate = _rate(t, ref.median_ms if ref else None)
            ceiling = ceilings.get("matmul_tflops") if unit == "TFLOP/s" else ceilings.get("copy_gbs")
            row.update({
                "striate_ms": ours.median_ms, "striate_min_ms": ours.min_ms,
                "reference_ms": ref.median_ms if ref else None,
                "cupy_ms": cref.median_ms if cref else None,
                "ratio": ours.median_ms / ref.median_ms if ours.median_ms and ref and ref.median_ms else None,
                "cupy_ratio": ours.median_ms / cref.median_ms if ours.median_ms and cref and cref.median_ms else None,
                "bytes": t.nbytes, "flops": t.flops, "rate": rate, "reference_rate": ref_rate, "unit": unit,
                "pct_of_ceiling": 100 * rate / ceiling if rate and ceiling else None,
                "calls_per_sample": ours.calls_per_sample,
                "samples_ms": [round(v, 5) for v in ours.samples_ms],
            })
            rows.append(row)
            _progress(row)
        timed = t = None  # drop the inputs before the next case allocates its own
        cp.get_default_memory_pool().free_all_blocks()
        if torch is not None:
            torch.cuda.empty_cache()


def _progress(row):
    print(f"  {row['op']:<32} {row['shape']:<28} {row['direction']:<8} striate {_ms(row.get('striate_ms'))} ms"
          f"  ref {_ms(row.get('reference_ms'))} ms  {_rate_text(row)}  {'; '.join(row['notes'])}",
          file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reports


def _ms(v):
    if v is None:
        return "n/a"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}" if v >= 0.1 else f"{v:.4f}"


def _rate_text(row):
    return _rate_value(row.get("rate"), row.get("unit")) or "n/a"


def _rate_value(rate, unit):
    if rate is None:
        return ""
    return f"{rate:.0f} GB/s" if unit == "GB/s" else f"{rate:.1f} TFLOP/s"


def _pct(v):
    return "n/a" if v is None else f"{v:.0f}%"


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(rows):
    memory = [r for r in rows if r.get("unit") == "GB/s" and r.get("pct_of_ceiling") is not None]
    conv = [r for r in rows if r["family"] == "conv2d" and r["direction"] == "fwd+bwd"
            and r.get("ratio") is not None]
    pct_cudnn = [100 / r["ratio"] for r in conv]
    return {
        "memory_bound_rows": len(memory),
        "memory_bound_at_target": sum(r["pct_of_ceiling"] >= MEMORY_TARGET_PCT for r in memory),
        "memory_bound_min_pct_of_copy": min((r["pct_of_ceiling"] for r in memory), default=None),
        "memory_bound_median_pct_of_copy": statistics.median([r["pct_of_ceiling"] for r in memory]) if memory else None,
        "conv2d_fwd_bwd_rows": len(conv),
        "conv2d_fwd_bwd_at_target": sum(p >= CONV_TARGET_PCT for p in pct_cudnn),
        "conv2d_fwd_bwd_geomean_pct_of_cudnn": _geomean(pct_cudnn),
        "conv2d_fwd_bwd_min_pct_of_cudnn": min(pct_cudnn, default=None),
        "rows_not_available": sum(any(n.startswith("n/a") for n in r["notes"]) for r in rows),
        "rows_failed": sum(any("failed" in n for n in r["notes"]) for r in rows),
    }


def markdown(rows, info, ceilings, summary):
    c = ceilings
    lines = [
        "# striate GPU benchmarks",
        "",
        f"{info['date']} on {info['gpu']} (driver {info['driver']}, CUDA runtime {info['cuda_runtime']}), "
        f"CuPy {info['cupy']}, PyTorch {info['torch'] or 'not installed'} (cuDNN {info['cudnn'] or 'n/a'}), "
        f"striate {info['striate']} ({info['striate_git'] or 'no git revision'}).",
        "",
        "Times are medians of CUDA-event samples after warm-up (fast calls batched per sample). "
        "TF32 is off everywhere (torch allow_tf32 = False for matmul and cuDNN; CUPY_TF32=0). "
        "Ratio = striate / reference (below 1: striate is faster). GB/s counts inputs read + "
        "outputs written once (a gather counts the cells it reads); TFLOP/s counts "
        "2*N*K*Ho*Wo*C*kh*kw per pass (bwd 2 passes, fwd+bwd 3). % of ceiling is against the copy "
        "bandwidth for GB/s rows and the fp32 matmul rate for TFLOP/s rows, both measured in this run.",
        "",
        "## Ceilings (measured in this run)",
        "",
        f"- device copy: **{c.get('copy_gbs') or 0:.0f} GB/s** ({c.get('copy_method')}; all: "
        + ", ".join(f"{k} {v:.0f}" for k, v in (c.get("copy_all_gbs") or {}).items() if v) + ")",
        f"- fp32 matmul: **{c.get('matmul_tflops') or 0:.1f} TFLOP/s** ({c.get('matmul_method')})"
        + (f"; torch.mm {c['torch_matmul_tflops']:.1f}" if c.get("torch_matmul_tflops") else ""),
        "",
        "## Summary against the targets",
        "",
        f"- memory-bound ops at >= {MEMORY_TARGET_PCT:.0f}% of the copy bandwidth: "
        f"{summary['memory_bound_at_target']} of {summary['memory_bound_rows']} rows "
        f"(worst {_pct(summary['memory_bound_min_pct_of_copy'])}, median "
        f"{_pct(summary['memory_bound_median_pct_of_copy'])})",
        f"- conv2d fwd+bwd at >= {CONV_TARGET_PCT:.0f}% of cuDNN's fp32 throughput: "
        f"{summary['conv2d_fwd_bwd_at_target']} of {summary['conv2d_fwd_bwd_rows']} shapes "
        f"(geometric mean {_pct(summary['conv2d_fwd_bwd_geomean_pct_of_cudnn'])}, worst "
        f"{_pct(summary['conv2d_fwd_bwd_min_pct_of_cudnn'])})",
        f"- rows without a striate kernel (n/a): {summary['rows_not_available']}; failed rows: "
        f"{summary['rows_failed']}",
        "",
        "## All rows",
        "",
        "| op | shape | dir | striate ms | reference | ref ms | ratio | CuPy ms | CuPy ratio | striate rate "
        "| % of ceiling | ref rate | rel. err |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ref_rate_text = _rate_value(r.get("reference_rate"), r.get("unit"))
        err = r.get("rel_err_vs_reference")
        lines.append(
            f"| {r['op']} | {r['shape']} | {r['direction']} | {_ms(r.get('striate_ms'))} | "
            f"{r['reference'] or '-'} | {_ms(r.get('reference_ms')) if r['reference'] else '-'} | "
            f"{'n/a' if r.get('ratio') is None else format(r['ratio'], '.2f')} | "
            f"{_ms(r.get('cupy_ms')) if r['cupy_reference'] else '-'} | "
            f"{'-' if r.get('cupy_ratio') is None else format(r['cupy_ratio'], '.2f')} | "
            f"{_rate_text(r)} | {_pct(r.get('pct_of_ceiling'))} | {ref_rate_text} | "
            f"{'' if err is None else format(err, '.1e')} |")
    notes = [r for r in rows if r["notes"]]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {r['op']} {r['shape']} {r['direction']}: {'; '.join(r['notes'])}" for r in notes]
    cupy_refs = sorted({r["cupy_reference"] for r in rows if r["cupy_reference"]})
    lines += ["", "CuPy references: " + ", ".join(cupy_refs) + ". The dropout one is a fused "
              "hash-mask kernel with the same bytes moved (a bandwidth reference, not Philox); "
              "PyTorch's pyr_down reference is reflect padding + a strided 5x5 convolution (the "
              "same function as cv2.pyrDown); pyr_up has none.",
              "", "## Reproduce", "", f"On a GPU machine, from the repository root: `{info['command']}` "
              "(or `bash benchmarks/gpu_check.sh`, which builds, tests and then runs it). Per-sample times "
              "are in the JSON file next to this one.", ""]
    return "\n".join(lines)


def _git_revision():
    import subprocess

    try:
        rev = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "csrc", "python"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def machine_info(cp, torch, command, args):
    import striate

    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "quick": args.quick, "repeats": args.repeats, "warmup": args.warmup,
        "gpu": name,
        "multiprocessors": props.get("multiProcessorCount"),
        "l2_bytes": props.get("l2CacheSize"),
        "memory_bytes": props.get("totalGlobalMem"),
        "compute_capability": f"{props.get('major')}.{props.get('minor')}",
        "driver": cp.cuda.runtime.driverGetVersion(),
        "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "cupy": cp.__version__,
        "torch": getattr(torch, "__version__", None),
        "torch_cuda": getattr(getattr(torch, "version", None), "cuda", None),
        "cudnn": torch.backends.cudnn.version() if torch is not None else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark if torch is not None else None,
        "striate": striate.__version__,
        "striate_git": _git_revision(),
        "python": platform.python_version(),
    }


# ---------------------------------------------------------------------------------------------
# Command line


def _no_gpu_reason():
    import striate
    from striate import _backend

    if striate.cuda.is_available():
        return None
    if not _backend.cuda_built():
        return "striate was built without CUDA (no striate._cuda)"
    if _backend._cupy is None:
        return "CuPy cannot be imported"
    return "no CUDA device (striate._cuda.device_count() == 0)"


def _torch_cuda():
    """torch with CUDA and TF32 off, or None (the reference columns are then n/a)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # cuDNN's fastest algorithm per shape (found in warm-up)
    return torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--quick", action="store_true", help="a few shapes and repeats (smoke run)")
    parser.add_argument("--only", default=None,
                        help="comma-separated families: conv2d, conv_transpose2d, pool2d, unpool2d, "
                             "dropout, pyramid, pad2d, warp")
    parser.add_argument("--repeats", type=int, default=None, help="samples per row (default 25, 5 with --quick)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="stop setting up new cases after this many seconds (default 240)")
    parser.add_argument("--out", default=str(BENCH_DIR / "results"), help="folder for the reports")
    parser.add_argument("--name", default="gpu-h200", help="report file stem (default gpu-h200)")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the rows that would be timed and whether a GPU is usable; time nothing")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (5 if args.quick else 25)
    case_list = cases(args.quick)
    if args.only:
        names = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = names - {c.family for c in case_list}
        if unknown:
            parser.error(f"--only: unknown families {sorted(unknown)}")
        case_list = [c for c in case_list if c.family in names]

    reason = _no_gpu_reason()
    if args.dry_run:
        for case in case_list:
            refs = " + ".join(r for r in (case.torch_ref, case.cupy_ref) if r) or "no reference"
            print(f"{case.op:<36} {case.shape:<30} {','.join(case.directions):<12} vs {refs}")
        n_rows = sum(len(c.directions) for c in case_list)
        print(f"{n_rows} rows in {len(case_list)} cases; reports would go to "
              f"{Path(args.out) / (args.name + '.json')} and .md")
        print(f"no GPU: {reason}; dry run, nothing timed" if reason else "GPU usable; dry run, nothing timed")
        return 0
    if reason:
        print(f"bench_gpu.py: no GPU: {reason}; nothing to time (use --dry-run to list the rows)",
              file=sys.stderr)
        return 1

    import cupy as cp

    import striate.ops as ops

    torch = _torch_cuda()
    if torch is None:
        print("bench_gpu.py: PyTorch with CUDA is not available; reference columns will be n/a",
              file=sys.stderr)
    script = Path(sys.argv[0]).resolve()
    command = shlex.join(["python", os.path.relpath(script, REPO_DIR) if script.is_relative_to(REPO_DIR)
                          else str(script)] + list(sys.argv[1:] if argv is None else argv))
    signal.signal(signal.SIGTERM, _raise_interrupted)
    print("measuring the ceilings (copy bandwidth, fp32 matmul)...", file=sys.stderr, flush=True)
    try:
        ceilings = measure_ceilings(cp, torch, args.repeats, args.warmup)
        print(f"  copy {ceilings['copy_gbs'] or 0:.0f} GB/s ({ceilings['copy_method']}), fp32 matmul "
              f"{ceilings['matmul_tflops'] or 0:.1f} TFLOP/s", file=sys.stderr, flush=True)
        rows = run(Env(cp, torch, ops), case_list, ceilings, args.repeats, args.warmup, args.budget_s)
    except Interrupted:  # while measuring the ceilings: report that nothing was timed
        ceilings, rows = {}, _untimed_rows(case_list)
    info = machine_info(cp, torch, command, args)
    summary = summarize(rows)
    text = markdown(rows, info, ceilings, summary)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.md").write_text(text, encoding="utf-8")
    payload = {"machine": info, "ceilings": ceilings, "summary": summary, "rows": rows}
    (out / f"{args.name}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out / (args.name + '.json')} and {out / (args.name + '.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
