"""``striate bench``: the benchmark runner of the source checkout."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def find_bench_runner():
    """benchmarks/run.py of the source checkout striate runs from (or the current folder), or None."""
    package = Path(__file__).resolve().parent.parent  # python/striate
    for root in (package.parent.parent, Path.cwd()):
        runner = root / "benchmarks" / "run.py"
        if runner.is_file():
            return runner
    return None


def run_bench(args) -> int:
    runner = find_bench_runner()
    if runner is None:
        print("striate bench: benchmarks/run.py was not found. The benchmarks ship with the source "
              "checkout, not the installed package: clone the repository and run `striate bench` "
              "(or `python benchmarks/run.py`) from its root.", file=sys.stderr)
        return 2
    extra = [a for a in args.runner_args if a != "--"]
    return subprocess.call([sys.executable, str(runner)] + extra, cwd=str(runner.parent.parent))
