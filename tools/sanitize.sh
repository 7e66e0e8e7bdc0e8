#!/usr/bin/env bash
# Build pyzen._C with AddressSanitizer + UndefinedBehaviorSanitizer and run the native-kernel
# tests under it. Exits non-zero on any sanitizer report or test failure.
#
#   tools/sanitize.sh                 # default kernel test files
#   tools/sanitize.sh -x -k matmul    # extra arguments go to pytest
#
# Environment: PYTHON (default: python3) runs cmake's Python detection and the tests and
# needs numpy, pytest, hypothesis and safetensors; pybind11 comes from PYTHON or from
# python3; CXX (default: g++) must be GCC, whose -print-file-name finds the runtimes to
# preload; PYZEN_SANITIZE_DIR (default: build/sanitize) holds the build, a staged copy of
# the package and tests, and pytest.log (the test output with any sanitizer report).
# The tests' `isa` fixture runs each kernel test on every ISA this CPU supports.
#
# The sanitized module never touches pyzen/_C*.so in the source tree: the tests run from
# the staged copy, so a dev build next to the sources stays as it is.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
CXX=${CXX:-g++}
WORK=${PYZEN_SANITIZE_DIR:-$ROOT/build/sanitize}
BUILD=$WORK/build
STAGE=$WORK/stage
LOG=$WORK/pytest.log

# sanitize_cases.py (next to this script): edge shapes that only mean something here.
TESTS=(tests/test_matmul.py tests/test_matmul_bf16.py tests/test_attention.py tests/test_attention_bf16.py
       tests/test_autocast.py tests/test_bench_roofs.py tests/test_layer_norm.py
       tests/test_cross_entropy.py tests/test_adamw.py tests/test_ops.py sanitize_cases.py)
# Tests that cannot run under ASan. The fuzz loop's child process limits its address space
# (RLIMIT_AS, 6 GiB) below ASan's shadow mapping, so its first mmap fails. ASan's throwing
# operator new aborts on a failed allocation, even with allocator_may_return_null=1, where
# the real one throws std::bad_alloc, which a huge attention batch must turn into MemoryError.
DESELECT=()
if [[ -f $ROOT/tests/test_fuzz_native.py ]]; then
  TESTS+=(tests/test_fuzz_native.py)
  DESELECT+=(--deselect tests/test_fuzz_native.py::test_random_calls_in_a_child_process)
  for id in attention_batch attention_empty attention_scratch; do
    DESELECT+=(--deselect "tests/test_fuzz_native.py::test_huge_logical_shapes_raise_naming_the_op[$id]")
  done
fi

pybind11_dir=${pybind11_DIR:-$("$PYTHON" -m pybind11 --cmakedir 2>/dev/null ||
                               python3 -m pybind11 --cmakedir 2>/dev/null || true)}
if [[ -z $pybind11_dir ]]; then
  echo "sanitize.sh: pybind11 not found; pip install pybind11 or set pybind11_DIR" >&2
  exit 2
fi

# Release (not Debug) keeps the build type CI uses; PYZEN_SANITIZE adds -O1 -g on top.
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$CXX" \
  -DPYZEN_CUDA=OFF -DPYZEN_SANITIZE=address,undefined \
  -DPython_EXECUTABLE="$(command -v "$PYTHON")" -Dpybind11_DIR="$pybind11_dir" >/dev/null
cmake --build "$BUILD"

# Stage the package, the sanitized module and the tests, so that the run imports nothing
# from the source tree (python -m pytest puts the working directory first on sys.path).
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -r "$ROOT/pyzen" "$ROOT/tests" "$ROOT/pyproject.toml" "$ROOT/tools/sanitize_cases.py" "$STAGE/"
find "$STAGE" \( -name '__pycache__' -o -name '*.so' \) -prune -exec rm -rf {} +
cp "$BUILD"/_C*.so "$STAGE/pyzen/"

# A CPython built without ASan must load the ASan runtime before anything else: ASan has to
# intercept malloc from the first allocation on. libubsan comes along for the UB checks.
export LD_PRELOAD="$("$CXX" -print-file-name=libasan.so) $("$CXX" -print-file-name=libubsan.so)"
# detect_leaks=0: CPython keeps interned objects, module state and arenas alive at exit on
# purpose, so LeakSanitizer would bury any kernel leak under thousands of interpreter ones.
# allocator_may_return_null=1: a request beyond ASan's 1 TiB limit fails as it does without
# ASan (NULL from malloc, std::bad_alloc from new) instead of aborting, so the tests that
# expect a MemoryError for huge shapes still test that.
# abort_on_error: the abort lets pytest's faulthandler print which test was running (ASan
# disables core dumps itself).
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
# The thread-count tests set their own counts; 2 makes every other kernel test run its
# OpenMP path too, even on a one-core machine.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

cd "$STAGE"
"$PYTHON" - <<'EOF'
import pyzen._C as C
assert "/stage/pyzen/" in C.__file__, f"imported {C.__file__}, not the staged module"
assert C.has_openmp(), "the sanitized module was built without OpenMP"
print(f"sanitize.sh: {C.__file__}, ISAs {C.supported_isas()}, {C.get_num_threads()} threads")
EOF

# --capture=sys: pytest captures Python's sys.stdout/stderr only, so a report written to
# file descriptor 2 by the sanitizer runtime reaches the log even when the process aborts
# mid-test (with fd capture it would be lost with the capture file). log_path is no way
# out: with ASan loaded, GCC 12's UBSan ignores UBSAN_OPTIONS=log_path and writes to stderr.
status=0
PYTHONPATH=$STAGE "$PYTHON" -m pytest -q -p no:cacheprovider --capture=sys "${TESTS[@]}" "${DESELECT[@]}" "$@" \
  2>&1 | tee "$LOG" || status=$?

if grep -qE 'runtime error:|ERROR: [A-Za-z]+Sanitizer|SUMMARY: [A-Za-z]+Sanitizer' "$LOG"; then
  echo "sanitize.sh: sanitizer report(s) above; full log in $LOG" >&2
  exit 1
fi
if ((status != 0)); then
  echo "sanitize.sh: pytest failed (exit $status) without a sanitizer report; log in $LOG" >&2
  exit "$status"
fi
echo "sanitize.sh: no sanitizer reports"
