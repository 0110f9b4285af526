"""Runs every benchmark family and writes benchmarks/results/cpu.json and cpu.md.

Usage (from the repository root):
    python benchmarks/run.py                      # all families, 1 and 2 threads
    python benchmarks/run.py --threads 2 --quick  # smoke test: a subset, few repeats
    python benchmarks/run.py --only conv2d,pool2d --out /tmp/bench
"""
from __future__ import annotations

import bench_autograd
import bench_conv2d
import bench_dropout
import bench_epoch
import bench_pool2d
import bench_pyramid
import bench_train
import bench_unpool2d
from _harness import BENCH_DIR, main

FAMILIES = {m.FAMILY: m.cases for m in (bench_conv2d, bench_pool2d, bench_unpool2d, bench_dropout,
                                        bench_pyramid, bench_autograd, bench_epoch, bench_train)}

if __name__ == "__main__":
    main(FAMILIES, "striate CPU kernels and layers against PyTorch and OpenCV.", out_default=str(BENCH_DIR / "results"))
