#!/usr/bin/env bash
# One command for a lent GPU machine (an H200, no internet): build striate with CUDA, run the
# CUDA tests with STRIATE_REQUIRE_CUDA=1, run compute-sanitizer memcheck on a small subset,
# and benchmark every op against PyTorch/CuPy. Run it from the repository root:
#
#     bash benchmarks/gpu_check.sh
#
# Every step is logged with timestamps to $OUT (the device tool's output folder; default
# benchmarks/results/gpu-logs), runs under `timeout`, and a failed step does not stop the
# next. The whole run stays inside GPU_CHECK_BUDGET_S seconds (default 465, under 8 minutes):
# each step's timeout is cut so that the later steps keep their minimum time.
#
# Files in $OUT (at most 8, the device tool's limit): gpu_check.log (environment, step
# timings, summary), build.log, tests.log, memcheck.log, bench.log, gpu-h200.json, gpu-h200.md.
# The benchmark also writes benchmarks/results/gpu-h200.{json,md} in the working tree.
#
# Exit status: 0 when every step passed, 1 otherwise (the log says which).
# Environment: PYTHON (default python3), GPU_CHECK_BUDGET_S, CUDA_ARCH (default 90), GPU_TEST_WORKERS,
# GPU_CHECK_SKIP_BUILD=1 to test an already installed striate.
set -u

cd "$(dirname "$0")/.." || exit 2
OUT="${OUT:-benchmarks/results/gpu-logs}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
: >"$LOG"
PY="${PYTHON:-python3}"
ARCH="${CUDA_ARCH:-90}"
START=$(date +%s)
DEADLINE=$((START + ${GPU_CHECK_BUDGET_S:-465}))
export PYTHONUNBUFFERED=1
STEPS=()
FAILED=()

log() { # message -> stdout and gpu_check.log, with UTC time and seconds since the start
  local line
  line="[$(date -u +%H:%M:%S) +$(($(date +%s) - START))s] $*"
  echo "$line"
  echo "$line" >>"$LOG"
}

step_timeout() { # wanted_seconds reserve_for_later_steps -> the timeout this step gets (>= 15)
  local left=$((DEADLINE - $(date +%s) - $2))
  if ((left < $1)); then ((left < 15)) && left=15; echo "$left"; else echo "$1"; fi
}

run_step() { # name logfile timeout command... : runs the command, logs rc and duration
  local name=$1 file=$2 limit=$3 t0 rc
  shift 3
  t0=$(date +%s)
  log "=== $name: start (timeout ${limit}s, log $file)"
  echo "\$ $*" >"$OUT/$file"
  timeout -k 20 "$limit" "$@" >>"$OUT/$file" 2>&1
  rc=$?
  local took=$(($(date +%s) - t0))
  ((rc == 124 || rc == 137)) && log "!!! $name: TIMED OUT after ${took}s"
  log "=== $name: rc=$rc (${took}s)"
  tail -n "${TAIL_LINES:-15}" "$OUT/$file" | sed "s/^/    [$name] /" | tee -a "$LOG"
  STEPS+=("$(printf '%-10s rc=%-4s %4ss' "$name" "$rc" "$took")")
  ((rc == 0)) || FAILED+=("$name")
  return $rc
}

# ------------------------------------------------------------------------------------- setup
log "striate gpu_check: $(git rev-parse --short HEAD 2>/dev/null || echo 'no git')$(git status --porcelain -- csrc python 2>/dev/null | grep -q . && echo '+dirty'), budget $((DEADLINE - START))s, OUT=$OUT"
{
  echo "--- nvidia-smi"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
    --format=csv 2>&1 || echo "nvidia-smi not available"
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  fi
  echo "--- nvcc: $(command -v nvcc || echo 'NOT FOUND')"
  nvcc --version 2>&1 | tail -n 2
  echo "--- python: $(command -v "$PY") ($("$PY" --version 2>&1))"
} >>"$LOG" 2>&1
MISSING=$("$PY" - <<'EOF' 2>&1
import importlib
need = ["numpy", "pybind11", "scikit_build_core", "cmake", "ninja", "cupy", "torch", "pytest"]
found, missing = [], []
for name in need:
    try:
        mod = importlib.import_module(name)
        found.append(f"{name} {getattr(mod, '__version__', '?')}")
    except Exception as exc:  # noqa: BLE001
        missing.append(f"{name} ({type(exc).__name__})")
print("found: " + ", ".join(found))
print("MISSING: " + ", ".join(missing) if missing else "MISSING: none")
EOF
)
echo "$MISSING" | tee -a "$LOG"
if echo "$MISSING" | grep -q "MISSING: none"; then :; else
  log "WARNING: some modules are missing (above); the steps that need them will fail and the rest go on"
fi
SANITIZER=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
log "compute-sanitizer: ${SANITIZER:-NOT FOUND}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
command -v nvcc >/dev/null 2>&1 && export CUDACXX="${CUDACXX:-$(command -v nvcc)}"

# ------------------------------------------------------------------------------- 1. build
# Reserve for the later steps: tests 60 s, memcheck 45 s, benchmark 120 s.
if [ "${GPU_CHECK_SKIP_BUILD:-0}" = "1" ]; then
  log "=== build: skipped (GPU_CHECK_SKIP_BUILD=1)"
  STEPS+=("build      skipped")
else
  STRIATE_CUDA=ON run_step build build.log "$(step_timeout 240 225)" \
    "$PY" -m pip install --no-build-isolation --no-deps --no-index --no-cache-dir -v . \
    "-Ccmake.define.CMAKE_CUDA_ARCHITECTURES=$ARCH"
fi
"$PY" -c "import striate, striate.cuda as c; print('striate', striate.__version__, 'from', striate.__file__, \
'| cuda built:', c.is_built(), '| cuda available:', c.is_available())" 2>&1 | tee -a "$LOG"

# ------------------------------------------------------------------------------- 2. CUDA tests
TIMEOUT_ARG=()
"$PY" -c "import pytest_timeout" >/dev/null 2>&1 && TIMEOUT_ARG=(--timeout 120)
# pytest-xdist, where installed, spreads the ~1,700 parametrised GPU tests over GPU_TEST_WORKERS
# processes (default 8; each holds its own CUDA context, a few hundred MiB on the card).
# pytest-benchmark refuses to load beside xdist (its warning is an error here), so it is switched off.
"$PY" -c "import xdist" >/dev/null 2>&1 && TIMEOUT_ARG+=(-n "${GPU_TEST_WORKERS:-8}" -p no:benchmark)
STRIATE_REQUIRE_CUDA=1 run_step tests tests.log "$(step_timeout 150 165)" \
  "$PY" -m pytest tests/cuda -q -p no:cacheprovider ${TIMEOUT_ARG[@]+"${TIMEOUT_ARG[@]}"}

# ------------------------------------------------------------------------------- 3. memcheck
if [ -n "$SANITIZER" ]; then
  run_step memcheck memcheck.log "$(step_timeout 120 120)" \
    "$SANITIZER" --tool memcheck --error-exitcode 86 --print-limit 50 \
    "$PY" benchmarks/gpu_memcheck_subset.py
else
  log "=== memcheck: skipped: compute-sanitizer not found (looked on PATH and in /usr/local/cuda/bin)"
  STEPS+=("memcheck   skipped (no compute-sanitizer)")
fi

# ------------------------------------------------------------------------------- 4. benchmark
BENCH_T=$(step_timeout 300 10)
run_step bench bench.log "$BENCH_T" \
  "$PY" benchmarks/bench_gpu.py --budget-s $((BENCH_T > 120 ? BENCH_T - 75 : BENCH_T / 2))
cp -f benchmarks/results/gpu-h200.json benchmarks/results/gpu-h200.md "$OUT/" 2>/dev/null ||
  log "no benchmark reports to copy"

# ------------------------------------------------------------------------------- summary
log "=== summary (total $(($(date +%s) - START))s)"
{
  for s in "${STEPS[@]}"; do echo "  $s"; done
  echo "  tests:    $(grep -E '(passed|failed|error|skipped)' "$OUT/tests.log" 2>/dev/null | tail -n 1)"
  echo "  memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" 2>/dev/null | tail -n 1)"
  echo "            $(grep -E '^(ok|skipped|failed):' "$OUT/memcheck.log" 2>/dev/null | tr '\n' ' ')"
  sed -n '/^## Summary against the targets/,/^## All rows/p' "$OUT/gpu-h200.md" 2>/dev/null | grep '^- ' | sed 's/^/  bench: /'
} | tee -a "$LOG"
if ((${#FAILED[@]})); then
  log "FAILED steps: ${FAILED[*]} (exit 1)"
  exit 1
fi
log "all steps passed"
