"""The CUDA kernels' device code, run on the CPU: cuda/host_check.cpp and
cuda/host_check_training.cpp compile the kernels with the host compiler through
cuda/host/cuda_runtime.h (one thread per CUDA thread, barriers, warp shuffles and the
bfloat16 mma emulated with PTX's fragment layout) under AddressSanitizer and UBSan, and
compare them with plain loops. This is how CUDA kernels are checked where there is no GPU,
CI included; it says nothing about speed or about nvcc's code."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CUDA = Path(__file__).resolve().parent.parent / "cuda"
CHECKS = ["host_check.cpp", "host_check_training.cpp"]
FLAGS = ["-std=c++20", "-O1", "-g", "-pthread", "-fsanitize=undefined,address", "-fno-sanitize-recover=all", "-Wall",
         "-Wno-unknown-pragmas", "-Werror"]


@pytest.fixture(scope="module")
def binaries(tmp_path_factory) -> dict:
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        pytest.skip("no C++ compiler to build the host checks with")
    out = tmp_path_factory.mktemp("host_check")
    builds = {name: (out / Path(name).stem, subprocess.Popen(
        [cxx, *FLAGS, f"-I{CUDA / 'host'}", f"-I{CUDA}", str(CUDA / name), "-o", str(out / Path(name).stem)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)) for name in CHECKS}  # both at once
    for name, (_, proc) in builds.items():
        log, _ = proc.communicate()
        assert proc.returncode == 0, f"{name} does not compile:\n{log[-4000:]}"
    return {name: path for name, (path, _) in builds.items()}


@pytest.mark.parametrize("name", CHECKS)
def test_kernels_match_plain_loops_under_sanitizers(binaries, name):
    run = subprocess.run([str(binaries[name])], capture_output=True, text=True, timeout=600)
    lines = run.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAIL")]
    assert run.returncode == 0 and not failed and lines[-1] == "0 failures", (
        "\n".join(failed) + "\n" + run.stdout[-2000:] + run.stderr[-4000:])
    assert sum(line.startswith("ok") for line in lines) >= 20  # the checks ran
