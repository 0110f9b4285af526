"""The benchmark loop, the command line and the reports (Markdown and JSON).

Each ``bench_<family>.py`` defines ``FAMILY`` and ``cases(quick)``, a list of
:class:`Case`. A case allocates its inputs once (``setup``) and returns, for
each direction it times, a striate callable and a reference callable (None
when the reference library is not installed). Every row is timed at every
requested thread count, with the same count on both sides.

Ratio = striate median time / reference median time; below 1 striate is faster.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from _timing import cv2, measure, optional_import, set_threads, torch

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
REFERENCE_MODULES = {"PyTorch": "torch", "OpenCV": "cv2"}
# The targets of issue 14 (CPU training speed).
CONV_GEOMEAN_TARGET = 0.8  # geometric mean of the conv2d fwd+bwd ratios
CONV_TARGET = 1.0  # every conv2d fwd+bwd ratio
MEMORY_BOUND_TARGET = 1.0  # pooling, unpooling, dropout, pyramids against the reference
MEMORY_BOUND_FAMILIES = ("pool2d", "unpool2d", "dropout", "pyramid")
COPY_FRACTION_TARGET = 0.5  # memory-bound kernels' GB/s over the copy bandwidth, at least
STEP_TARGET = 1.0  # every whole training step (bench_train.py, bench_autograd.py)


@dataclass
class Bench:
    """One timed direction of a case: "fwd", "bwd" or "fwd+bwd"."""

    direction: str
    reference: str | None  # "PyTorch", "OpenCV", or None when no library has the op
    target: float | None = None  # the ratio the row should stay at or below


@dataclass
class Case:
    """Inputs shared by a few directions of one op on one shape.

    ``bytes_moved`` (direction -> bytes), for memory-bound ops: the least memory traffic of one
    call (every input read once, every output written once); the row then reports striate's
    GB/s as a fraction of the copy bandwidth measured in the same run.
    """

    op: str
    shape: str
    benches: list[Bench]
    setup: Callable[[], dict[str, tuple[Callable, Callable | None]]]
    bytes_moved: dict | None = None


COPY_BYTES = 64 << 20  # buffer copied to measure the copy bandwidth


def copy_bandwidth(repeats, warmup, min_sample_s):
    """GB/s of the fastest plain copy at the current thread count (read + write bytes): numpy's
    single-threaded copyto, or PyTorch's threaded copy_ when installed. Fresh-page effects are
    excluded (the buffers are touched first)."""
    import numpy as np

    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.zeros_like(src)
    fns = [lambda: np.copyto(dst, src)]
    if torch is not None:
        ts, td = torch.from_numpy(src), torch.from_numpy(dst)
        fns.append(lambda: td.copy_(ts))
    timings = measure(fns, repeats, warmup, min_sample_s)
    best = min(t.median_ms for t in timings if t is not None and t.median_ms)
    return 2 * COPY_BYTES / (best * 1e-3) / 1e9


def memory_bound_benches(reference="PyTorch"):
    """fwd and bwd rows against reference, both held to MEMORY_BOUND_TARGET."""
    return [Bench("fwd", reference, MEMORY_BOUND_TARGET), Bench("bwd", reference, MEMORY_BOUND_TARGET)]


def random_array(shape, seed=0, scale=1.0):
    """float32 standard-normal data (times scale), reproducible by seed."""
    data = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    if scale != 1.0:
        data *= np.float32(scale)
    return data


def shape_text(shape) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


# ---------------------------------------------------------------------------------------------
# Running


def _rounded(timing):
    return [round(v, 4) for v in timing.samples_ms] if timing is not None else None


def _row(family, case, bench, threads, ours, ref, note=None, copy_gbps=None):
    striate_ms = ours.median_ms if ours is not None else None
    moved = (case.bytes_moved or {}).get(bench.direction)
    gbps = moved / (striate_ms * 1e-3) / 1e9 if moved and striate_ms else None
    reference_ms = ref.median_ms if ref is not None else None
    notes = [n for n in (note,) if n]
    if ours is not None and ours.error:
        notes.append(f"striate failed: {ours.error}")
    if ref is not None and ref.error:
        notes.append(f"reference failed: {ref.error}")
    if bench.reference and ref is None and not note:
        notes.append(f"n/a: {REFERENCE_MODULES.get(bench.reference, bench.reference)} not installed")
    ratio = striate_ms / reference_ms if striate_ms and reference_ms else None
    return {
        "family": family,
        "op": case.op,
        "shape": case.shape,
        "direction": bench.direction,
        "threads": threads,
        "striate_ms": striate_ms,
        "striate_min_ms": ours.min_ms if ours is not None else None,
        "reference": bench.reference,
        "reference_ms": reference_ms,
        "reference_min_ms": ref.min_ms if ref is not None else None,
        "ratio": ratio,
        "target": bench.target,
        "batch_calls": {"striate": ours.batch if ours is not None else None,
                        "reference": ref.batch if ref is not None else None},
        "samples_ms": {"striate": _rounded(ours), "reference": _rounded(ref)},
        "bytes_moved": moved,
        "striate_gbps": gbps,
        "copy_gbps": copy_gbps if moved else None,
        "copy_fraction": gbps / copy_gbps if gbps and copy_gbps else None,
        "note": "; ".join(notes) or None,
    }


def _progress(total):
    tqdm = optional_import("tqdm")
    if tqdm is None:
        return None
    return tqdm.tqdm(total=total, file=sys.stderr, unit="row", dynamic_ncols=True)


def run_cases(families, threads, quick, repeats, warmup, min_sample_s):
    """Times every case of every family at every thread count; returns the rows."""
    selected = [(name, case) for name, cases in families.items() for case in cases(quick)]
    bar = _progress(sum(len(case.benches) for _, case in selected) * len(threads))
    rows = []
    copy_gbps = {}
    if any(case.bytes_moved for _, case in selected):
        for n in threads:
            set_threads(n)
            copy_gbps[n] = copy_bandwidth(repeats, warmup, min_sample_s)
    for family, case in selected:
        if bar is not None:
            bar.set_description(f"{case.op} {case.shape}")
        try:
            fns = case.setup()
        except Exception as exc:  # noqa: BLE001 - an op that fails still gets its rows
            fns = None
            setup_error = f"setup failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        for n in threads:
            set_threads(n)
            for bench in case.benches:
                if fns is None:
                    rows.append(_row(family, case, bench, n, None, None, setup_error))
                else:
                    ours, ref = measure(fns[bench.direction], repeats, warmup, min_sample_s)
                    rows.append(_row(family, case, bench, n, ours, ref, copy_gbps=copy_gbps.get(n)))
                if bar is not None:
                    bar.update()
        del fns
        gc.collect()
    if bar is not None:
        bar.close()
    return rows


# ---------------------------------------------------------------------------------------------
# Reports


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or platform.machine(), []
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.processor())
    flags_line = next((line for line in info.splitlines() if line.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[-1].split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return model, [f for f in wanted if f in flags]


def _git_revision():
    try:
        rev = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "csrc",
                                "python"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def machine_info(command, threads, quick, repeats, warmup, min_sample_s):
    import striate

    model, flags = _cpu_model()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "quick": quick,
        "threads": list(threads),
        "repeats": repeats,
        "warmup": warmup,
        "min_sample_ms": 1e3 * min_sample_s,
        "cpu": model,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "opencv": cv2.__version__ if cv2 is not None else None,
        "striate": striate.__version__,
        "striate_git": _git_revision(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def _ms(v):
    if v is None:
        return "n/a"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _ratio(row):
    if row["ratio"] is None:
        return "n/a" if row["reference"] else "-"
    text = f"{row['ratio']:.2f}"
    return f"**{text}**" if row["target"] is not None and row["ratio"] > row["target"] else text


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(rows, threads):
    """Per thread count: the ratios the targets are about (conv2d, memory-bound ops, training step)."""
    summary = {}
    for n in threads:
        conv = [r["ratio"] for r in rows if r["threads"] == n and r["family"] == "conv2d"
                and r["direction"] == "fwd+bwd" and r["ratio"] is not None]
        memory = [r["ratio"] for r in rows if r["threads"] == n and r["ratio"] is not None
                  and r["family"] in MEMORY_BOUND_FAMILIES]
        step = [r["ratio"] for r in rows if r["threads"] == n and r["ratio"] is not None
                and r["direction"] == "step"]
        fractions = [r["copy_fraction"] for r in rows if r["threads"] == n and r.get("copy_fraction")]
        summary[str(n)] = {
            "training_step": step[0] if step else None,
            "conv2d_fwd_bwd_geomean": _geomean(conv),
            "conv2d_fwd_bwd_max": max(conv) if conv else None,
            "conv2d_fwd_bwd_rows": len(conv),
            "memory_bound_max": max(memory) if memory else None,
            "memory_bound_rows": len(memory),
            "copy_fraction_min": min(fractions) if fractions else None,
            "training_step_max": max(step) if step else None,
        }
    return summary


def _fmt_ratio(v):
    return "n/a" if v is None else f"{v:.2f}"


def markdown(rows, info, summary, with_json):
    refs = ", ".join(f"{name} {info[key] or 'not installed'}"
                     for name, key in (("PyTorch", "torch"), ("OpenCV", "opencv")))
    lines = [
        "# striate CPU benchmarks",
        "",
        f"{info['date']} on {info['cpu']} ({info['logical_cpus']} logical CPUs; "
        f"{' '.join(info['cpu_flags']) or 'no AVX flags'}), numpy {info['numpy']}, {refs}, "
        f"striate {info['striate']} ({info['striate_git'] or 'no git revision'}).",
        "",
        "Ratio = striate time / reference time, both medians of "
        f"{info['repeats']} sample(s) taken side by side at the same thread count "
        "(below 1: striate is faster; bold: above the target). float32, NCHW. "
        "Pooling rows name the input shape; unpooling rows the pooled input and the output size. "
        "conv2d fwd+bwd is the forward plus all three gradients (autograd for PyTorch); "
        "bwd alone is PyTorch's backward on a retained graph.",
    ]
    if info["quick"]:
        lines += ["", "**Quick run**: a subset of the shapes and few repeats, for smoke testing; "
                      "not the numbers to quote."]
    lines += ["", "## Summary", "",
              f"| threads | conv2d fwd+bwd geomean (target <= {CONV_GEOMEAN_TARGET:g}) | "
              f"conv2d fwd+bwd worst (<= {CONV_TARGET:g}) | "
              f"pool/unpool/dropout/pyramid worst (<= {MEMORY_BOUND_TARGET:g}) | "
              f"memory-bound share of copy bandwidth, least (>= {COPY_FRACTION_TARGET:g}) | "
              f"training steps worst (<= {STEP_TARGET:g}) |",
              "|---|---|---|---|---|---|"]
    for n, s in summary.items():
        lines.append(f"| {n} | {_fmt_ratio(s['conv2d_fwd_bwd_geomean'])} "
                     f"({s['conv2d_fwd_bwd_rows']} shapes) | {_fmt_ratio(s['conv2d_fwd_bwd_max'])} | "
                     f"{_fmt_ratio(s['memory_bound_max'])} ({s['memory_bound_rows']} rows) | "
                     f"{_fmt_ratio(s['copy_fraction_min'])} | {_fmt_ratio(s['training_step_max'])} |")
    for n in info["threads"]:
        lines += ["", f"## {n} thread{'s' if n > 1 else ''}", "",
                  "| op | shape | dir | striate ms | reference | reference ms | ratio | target | "
                  "GB/s (of copy) |",
                  "|---|---|---|---:|---|---:|---:|---:|---:|"]
        for r in (r for r in rows if r["threads"] == n):
            target = f"<= {r['target']:g}" if r["target"] is not None else ""
            bandwidth = (f"{r['striate_gbps']:.1f} ({100 * r['copy_fraction']:.0f}%)"
                         if r.get("copy_fraction") else "")
            lines.append(f"| {r['op']} | {r['shape']} | {r['direction']} | {_ms(r['striate_ms'])} | "
                         f"{r['reference'] or '-'} | {_ms(r['reference_ms']) if r['reference'] else '-'} | "
                         f"{_ratio(r)} | {target} | {bandwidth} |")
    # A missing library is said once in the header; the JSON rows keep the per-row note.
    notes = [r for r in rows if r["note"] and not r["note"].startswith("n/a:")]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {r['op']} {r['shape']} {r['direction']} ({r['threads']}t): {r['note']}" for r in notes]
    lines += ["", "## Reproduce", "",
              f"From the repository root, with striate, torch and opencv-python installed: "
              f"`{info['command']}`." + (" Per-sample times, minimums and batch sizes are in cpu.json "
                                    "next to this file." if with_json else ""), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def _thread_list(text):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"--threads must be positive integers like 1,2, got {text!r}")
    return values


def main(families, description, out_default=None, argv=None):
    """Parses the command line, runs the families and prints/writes the reports.

    Args:
        families: {name: cases function}. With more than one, ``--only`` picks some.
        out_default: folder for cpu.json and cpu.md; None prints the table only unless --out.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=_thread_list, default=[1, 2],
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--quick", action="store_true",
                        help="a subset of the shapes and few repeats (smoke test)")
    if len(families) > 1:
        parser.add_argument("--only", default=None,
                            help=f"comma-separated families out of {','.join(families)}")
    parser.add_argument("--out", default=out_default,
                        help="folder for cpu.json and cpu.md" +
                             (" (default: print only)" if out_default is None else ""))
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed samples per row (default 7, 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (default 1)")
    parser.add_argument("--min-sample-ms", type=float, default=None,
                        help="batch fast calls until a sample lasts this long (default 20, 5 with --quick)")
    args = parser.parse_args(argv)
    if getattr(args, "only", None):
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in families]
        if unknown:
            parser.error(f"--only: unknown families {unknown}; expected some of {list(families)}")
        families = {n: cases for n, cases in families.items() if n in names}
    repeats = args.repeats or (3 if args.quick else 7)
    min_sample_s = 1e-3 * (args.min_sample_ms if args.min_sample_ms is not None
                           else 5.0 if args.quick else 20.0)
    script = Path(sys.argv[0]).resolve()
    script_text = os.path.relpath(script, REPO_DIR) if script.is_relative_to(REPO_DIR) else str(script)
    command = shlex.join(["python", script_text] + list(sys.argv[1:] if argv is None else argv))

    rows = run_cases(families, args.threads, args.quick, repeats, args.warmup, min_sample_s)
    info = machine_info(command, args.threads, args.quick, repeats, args.warmup, min_sample_s)
    summary = summarize(rows, args.threads)
    text = markdown(rows, info, summary, args.out is not None)
    print(text)
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "cpu.md").write_text(text, encoding="utf-8")
        payload = {"machine": info, "summary": summary, "rows": rows}
        (out / "cpu.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
        print(f"wrote {out / 'cpu.json'} and {out / 'cpu.md'}", file=sys.stderr)
