#!/usr/bin/env bash
# Run striate's op tests against a CPU extension built with AddressSanitizer and
# UndefinedBehaviorSanitizer.
#
# What it does:
#   1. builds striate._cpu with -fsanitize=address,undefined (CUDA off) by calling cmake on the
#      repository's CMakeLists.txt, into its own build directory;
#   2. makes a throwaway package tree, $BUILD_DIR/pkg, holding a copy of python/striate and the
#      sanitized _cpu, put first on PYTHONPATH; a sitecustomize.py there removes the import hook of
#      an editable striate install, which would otherwise win over PYTHONPATH. The script checks
#      that `striate._cpu` really is the sanitized one and stops otherwise;
#   3. runs pytest (default target tests/ops) with the compiler's libasan preloaded (CPython,
#      numpy and torch are not instrumented). Child interpreters started by the tests inherit
#      the environment, so they are checked too;
#   4. prints one summary line and exits non-zero on any sanitizer report or failed test.
#
# Reports go to $BUILD_DIR/logs/asan.<pid> and ubsan.<pid> (one file per process that reported,
# children included, whose stderr a test may capture), pytest's output to
# $BUILD_DIR/logs/pytest.log; all are cleared at each run. ASan stops the process at its first
# report (memory is not trustworthy after one): if that is pytest itself, its faulthandler prints
# the test that was running and the summary says pytest did not finish. UBSan reports and goes on
# (each source location once per process), so one run lists all of them; any "runtime error:"
# line fails the script even when every test passed.
#
# Usage (inside a virtualenv holding striate's test dependencies; paths are relative to the
# repository root):
#   pip install "cmake>=3.24" ninja "pybind11>=2.12"   # the build tools, if not there yet
#   bash tools/sanitize.sh                              # tests/ops
#   bash tools/sanitize.sh tests/ops/test_pool2d.py -q  # arguments go to pytest; when none of
#                                                       # them is a path, tests/ops is added
#   STRIATE_SANITIZE_BUILD_DIR=/tmp/san bash tools/sanitize.sh   # another build directory
#
# Cost, measured on the project's 2-core CPU (shared with other work) with ninja: a build from
# scratch about 2.5 minutes (later runs rebuild only the changed sources), tests/ops about
# 2.5 minutes under the sanitizers; the script prints both times.
#
# The target's own -O3 -march=native (CMakeLists.txt) come after CMAKE_CXX_FLAGS on the compiler
# line, so the kernels are checked as they ship; -g and frame pointers keep the stacks readable.
# GCC only (libasan.so, a static libubsan.a).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${STRIATE_SANITIZE_BUILD_DIR:-build/sanitize}"
mkdir -p "$BUILD_DIR"
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"
PKG="$BUILD_DIR/pkg"
LOGS="$BUILD_DIR/logs"

die() { echo "sanitize.sh: $*" >&2; exit 2; }

command -v cmake >/dev/null || die "cmake not found; install it with: pip install 'cmake>=3.24'"
PYBIND11_DIR="$(python -m pybind11 --cmakedir 2>/dev/null)" \
  || die "pybind11 not importable by $(command -v python); install it with: pip install 'pybind11>=2.12'"
GENERATOR=()
if command -v ninja >/dev/null; then
  GENERATOR=(-G Ninja)
fi

# ------------------------------------------------------------------------------------ build
SANITIZE_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -g"
# GCC's UBSan runtime, libubsan.so, would be loaded next to libasan and call libasan's copies of
# the shared sanitizer functions: its log_path is then ignored and its reports go to stderr, where
# pytest's capture (and a test's capture of a child's stderr) hides them. Linked statically into
# _cpu with its symbols kept local, it honours UBSAN_OPTIONS=log_path like ASan does.
LINK_FLAGS="$SANITIZE_FLAGS -static-libubsan -Wl,--exclude-libs,libubsan.a"
build_start=$SECONDS
# A generator cannot change inside an existing build directory: start again when it would.
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]] \
   && ! grep -qx "CMAKE_GENERATOR:INTERNAL=${GENERATOR[1]:-Unix Makefiles}" "$BUILD_DIR/CMakeCache.txt"; then
  rm -rf "$BUILD_DIR/CMakeCache.txt" "$BUILD_DIR/CMakeFiles"
fi
# CMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF: pybind11 would otherwise add -flto, which only slows
# the link here. RelWithDebInfo keeps pybind11 from stripping the module.
cmake -S "$ROOT" -B "$BUILD_DIR" "${GENERATOR[@]}" \
  -DSTRIATE_CUDA=OFF -DSTRIATE_NATIVE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
  -DCMAKE_CXX_FLAGS="$SANITIZE_FLAGS" \
  -DCMAKE_SHARED_LINKER_FLAGS="$LINK_FLAGS" \
  -DCMAKE_MODULE_LINKER_FLAGS="$LINK_FLAGS" \
  -DPython_EXECUTABLE="$(command -v python)" \
  -Dpybind11_DIR="$PYBIND11_DIR" >/dev/null

CXX="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$BUILD_DIR/CMakeCache.txt")"
gcc_file() {
  local path
  path="$("$CXX" -print-file-name="$1")"
  [[ -f "$path" ]] || die "$CXX did not find $1 (got '$path'); this script needs GCC's sanitizers"
  realpath "$path"
}
gcc_file libubsan.a >/dev/null
# libasan must be the first library loaded (python itself is not instrumented). libstdc++ comes
# right after it: python does not link it, and ASan resolves the real __cxa_throw at start-up;
# without it the first C++ exception (every ValueError from a binding) stops the process with
# "AddressSanitizer: CHECK failed ... real___cxa_throw".
PRELOAD="$(gcc_file libasan.so):$(gcc_file libstdc++.so.6)"

cmake --build "$BUILD_DIR" --target _cpu
build_seconds=$((SECONDS - build_start))

shopt -s nullglob
built=("$BUILD_DIR"/_cpu*.so)
[[ ${#built[@]} -eq 1 ]] || die "expected one _cpu*.so in $BUILD_DIR, found ${#built[@]}"

# ----------------------------------------------------------------------- package tree
rm -rf "$PKG"
mkdir -p "$PKG"
cp -r "$ROOT/python/striate" "$PKG/striate"
rm -f "$PKG"/striate/_cpu*.so "$PKG"/striate/_cuda*.so
cp "${built[0]}" "$PKG/striate/"
cat > "$PKG/sitecustomize.py" <<'EOF'
# Written by tools/sanitize.sh: drop the import hooks of an editable striate install (they sit in
# sys.meta_path, ahead of PYTHONPATH) so that `import striate` finds this tree and its sanitized
# _cpu.
import sys

sys.meta_path[:] = [f for f in sys.meta_path
                    if not (type(f).__module__.startswith(("_editable_", "__editable__"))
                            and "striate" in type(f).__module__)]
EOF

rm -rf "$LOGS"
mkdir -p "$LOGS"
# detect_leaks=0: CPython keeps objects alive at exit on purpose. allocator_may_return_null=1: a
# huge allocation returns NULL (numpy raises MemoryError) as with glibc instead of a report.
export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:report_error_type=1:halt_on_error=0:log_path=$LOGS/ubsan"

expected="$PKG/striate/$(basename "${built[0]}")"
loaded="$(LD_PRELOAD="$PRELOAD" python -c 'import striate._cpu as m; print(m.__file__)')" \
  || die "importing striate with the sanitized _cpu failed"
[[ "$loaded" == "$expected" ]] \
  || die "striate._cpu comes from $loaded, not from the sanitized build $expected"

# ------------------------------------------------------------------------------------ tests
args=("$@")
has_target=0
for a in "${args[@]}"; do
  if [[ -e "${a%%::*}" ]]; then has_target=1; fi
done
[[ $has_target -eq 1 ]] || args=(tests/ops "${args[@]}")

test_start=$SECONDS
set +e
LD_PRELOAD="$PRELOAD" python -m pytest "${args[@]}" 2>&1 | tee "$LOGS/pytest.log"
pytest_rc=${PIPESTATUS[0]}
set -e
test_seconds=$((SECONDS - test_start))

# ---------------------------------------------------------------------------------- summary
asan_logs=("$LOGS"/asan.*)
ubsan_logs=("$LOGS"/ubsan.*)
asan=0
ubsan=0
if [[ ${#asan_logs[@]} -gt 0 ]]; then
  asan=$(cat "${asan_logs[@]}" | grep -c -E "ERROR: AddressSanitizer|AddressSanitizer: CHECK failed" || true)
fi
if [[ ${#ubsan_logs[@]} -gt 0 ]]; then
  ubsan=$(cat "${ubsan_logs[@]}" | grep -c "runtime error:" || true)
fi
if [[ $((${#asan_logs[@]} + ${#ubsan_logs[@]})) -gt 0 ]]; then
  echo "sanitizer reports (count, first line):"
  grep -h -E "ERROR: AddressSanitizer|AddressSanitizer: CHECK failed|runtime error:" \
    "${asan_logs[@]}" "${ubsan_logs[@]}" | sed -E 's/^==[0-9]+==//; s/ on address .*//' | sort | uniq -c || true
  echo "full stacks: ${asan_logs[*]} ${ubsan_logs[*]}"
fi
# pytest's last line, with or without its ===== frame (-q drops it).
outcome="$(grep -E '^(=+ )?([0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?),? ?)+ in [0-9.]+s|no tests ran' \
           "$LOGS/pytest.log" | tail -n 1 | sed -E 's/^=+ //; s/ =+$//' || true)"
[[ -n "$outcome" ]] || outcome="did not finish (exit $pytest_rc), see $LOGS/pytest.log"
echo "sanitize: ASan reports: $asan, UBSan runtime errors: $ubsan, pytest: $outcome;" \
     "build ${build_seconds}s, tests ${test_seconds}s"
[[ $asan -eq 0 && $ubsan -eq 0 && $pytest_rc -eq 0 ]]
