"""Training steps on a shared machine: the slowdown a busy process causes, striate against PyTorch.

Each training step of ``bench_train.py`` (LeNet-5, BN CNN, ResNet-18 64x64,
U-Net, DCGAN) is timed alone, then while ``--busy`` single-threaded busy loops
(default 1: one of this machine's cores taken) run in other processes; both
libraries at ``--threads`` threads (default 2), steps interleaved. The
slowdown is busy time / alone time; the striate/PyTorch ratio of those
slowdowns is what the acceptance reads (at or below 1: striate degrades no
worse). Writes ``shared.json`` and ``shared.md`` with ``--out``.

Run alone: ``python benchmarks/bench_shared.py --out benchmarks/results``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import bench_train
from _timing import measure, set_threads


def _spin(stop):
    while not stop.is_set():
        pass


def _busy(count):
    """Starts count busy-loop processes; returns the event that stops them and the processes."""
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(count)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    return stop, procs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--busy", type=int, default=1, help="busy processes (default 1)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None, help="folder for shared.json and shared.md")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    rows = []
    for case in bench_train.cases(quick=True):
        ours, ref = case.setup()["step"]
        alone = measure([ours, ref], args.repeats, 1, 0.05)
        stop, procs = _busy(args.busy)
        try:
            busy = measure([ours, ref], args.repeats, 1, 0.05)
        finally:
            stop.set()
            for p in procs:
                p.join(5)
        row = {"model": case.op, "shape": case.shape, "threads": args.threads, "busy_processes": args.busy,
               "striate_alone_ms": alone[0].median_ms, "striate_busy_ms": busy[0].median_ms,
               "torch_alone_ms": alone[1].median_ms, "torch_busy_ms": busy[1].median_ms}
        row["striate_slowdown"] = row["striate_busy_ms"] / row["striate_alone_ms"]
        row["torch_slowdown"] = row["torch_busy_ms"] / row["torch_alone_ms"]
        row["slowdown_ratio"] = row["striate_slowdown"] / row["torch_slowdown"]
        rows.append(row)
        print(f"{case.op:24s} striate x{row['striate_slowdown']:.2f}  PyTorch x{row['torch_slowdown']:.2f}",
              file=sys.stderr, flush=True)
    lines = ["# Training steps beside busy processes", "",
             f"{args.busy} single-threaded busy process(es) beside a {args.threads}-thread training step; "
             "slowdown = median step time with them / alone (interleaved samples, same process).", "",
             "| model | shape | striate alone ms | striate busy ms | striate slowdown | PyTorch alone ms | "
             "PyTorch busy ms | PyTorch slowdown | striate / PyTorch slowdown |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['shape']} | {r['striate_alone_ms']:.1f} | {r['striate_busy_ms']:.1f} | "
                     f"{r['striate_slowdown']:.2f} | {r['torch_alone_ms']:.1f} | {r['torch_busy_ms']:.1f} | "
                     f"{r['torch_slowdown']:.2f} | {r['slowdown_ratio']:.2f} |")
    lines += ["", f"Reproduce: `python benchmarks/bench_shared.py --threads {args.threads} --busy {args.busy}`.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "shared.md").write_text(text, encoding="utf-8")
        (out / "shared.json").write_text(json.dumps({"rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
