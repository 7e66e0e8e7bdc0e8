#!/usr/bin/env bash
# The GPU session in one script, for a machine with an NVIDIA GPU, CUDA's compiler and a
# Python that has PyTorch, NumPy, pybind11, pytest and hypothesis (the device tool's image
# has them all): build pyzen's two native modules for that Python, run the CUDA tests on the
# GPU, then the CUDA benchmarks against PyTorch. Logs and numbers go to $OUT (default
# ./gpu-results), one file per step. Steps: build, test, bench (default: all three, in
# order; a warm machine keeps build-gpu/, so later calls can skip the build).
#   bash tools/gpu_check.sh build test      # then, in a second call: bash tools/gpu_check.sh bench
# Each step stays well inside a 10-minute command limit on an H100 (16 cores): the build
# is sm_90 only.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
py=${PYTHON:-python3}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build test bench)

build() {
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYZEN_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DPython_EXECUTABLE="$(command -v "$py")" -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" > "$OUT/build.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" >> "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; return 1; }
  cp build-gpu/_C*.so build-gpu/_cuda*.so pyzen/
  "$py" -c "import pyzen; print(pyzen.cuda.get_device_name(0))" | tee -a "$OUT/build.log"
}

test_() {
  "$py" -m pytest -q -p no:cacheprovider -k "not emulated" --durations=10 \
    tests/test_cuda_setup.py tests/test_cuda_kernels.py tests/test_cuda_ops.py tests/test_autocast.py 2>&1 |
    tee "$OUT/tests.log" | tail -40
}

bench() {
  "$py" benchmarks/bench_cuda_matmul.py --sizes 1024,4096 --layouts nn,nt,tn 2>&1 | tee "$OUT/bench_cuda_matmul.txt"
  "$py" benchmarks/bench_cuda_matmul.py --sizes 1024,4096 --layouts nn,nt --bf16 2>&1 | tee -a "$OUT/bench_cuda_matmul.txt"
  "$py" benchmarks/bench_cuda_training.py 2>&1 | tee "$OUT/bench_cuda_training.txt"
  "$py" benchmarks/bench_cuda_host_overhead.py 2>&1 | tee "$OUT/bench_cuda_host_overhead.txt"
  for mode in "" --bf16; do
    "$py" benchmarks/bench_gpt.py --device cuda --sizes small gpt2 --steps 12 $mode 2>&1 | tee -a "$OUT/bench_gpt_cuda.txt"
  done
}

for s in "${steps[@]}"; do
  case $s in
    build) build || exit 1 ;;
    test) test_ ;;
    bench) bench ;;
    *) echo "unknown step $s (build, test, bench)"; exit 2 ;;
  esac
done
