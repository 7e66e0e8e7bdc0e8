"""Build and runtime configuration: show_config, CUDA availability, ISA selection at import."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import pyzen
import pyzen._C as C


def test_version_is_a_string():
    assert isinstance(pyzen.__version__, str) and pyzen.__version__


def test_show_config_reports_build_and_runtime(capfd):
    pyzen.show_config()
    out, _ = capfd.readouterr()
    low = out.lower()
    assert pyzen.__version__ in out
    for word in ("compiler", "isa", "thread", "cuda"):
        assert word in low, f"show_config() does not mention {word!r}:\n{out}"
    assert C.isa() in out
    assert re.search(rf"bf16 paths supported\s+{', '.join(C.bf16_paths())}", out), out
    n = C.get_num_threads()
    assert re.search(rf"(?i)threads?\D{{0,30}}\b{n}\b", out), out


def test_show_config_mentions_cuda_reason_when_unavailable(capfd):
    if pyzen.cuda.is_available():
        pytest.skip("CUDA-only: this machine has CUDA")
    pyzen.show_config()
    out, _ = capfd.readouterr()
    assert pyzen.cuda.unavailable_reason() in out


def test_cuda_unavailable_with_reason():
    avail = pyzen.cuda.is_available()
    assert isinstance(avail, bool)
    if avail:
        pytest.skip("CUDA-only: this machine has CUDA")
    reason = pyzen.cuda.unavailable_reason()
    assert isinstance(reason, str) and reason.strip()


def _run(code, **env):
    """Run ``code`` in a fresh interpreter that imports the same pyzen as this process."""
    full_env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyzen.__file__)))
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH")) if p)
    full_env.update(env)
    # cwd=root: `python -c` puts the working directory first on sys.path, and a source
    # checkout there (without the compiled _C) would shadow the package under test.
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=120, cwd=root)


def test_env_var_forces_scalar_isa():
    r = _run("import pyzen._C as C; print(C.isa())", PYZEN_ISA="scalar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "scalar"


def test_env_var_forces_scalar_isa_through_pyzen_import():
    r = _run("import pyzen; print(pyzen._C.isa())", PYZEN_ISA="scalar")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "scalar"


@pytest.mark.parametrize("isa", C.supported_isas())
def test_env_var_selects_each_supported_isa(isa):
    r = _run("import pyzen._C as C; print(C.isa())", PYZEN_ISA=isa)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == isa


def test_env_var_unsupported_value_fails_loudly():
    r = _run("import pyzen._C as C; print(C.isa())", PYZEN_ISA="bogus")
    assert r.returncode != 0
    assert "bogus" in r.stderr and "PYZEN_ISA" in r.stderr
    assert r.stdout.strip() == ""


def test_import_is_light():
    r = _run("import sys, pyzen; print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def _cpuinfo_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or os.uname().machine != "x86_64",
                    reason="reads the CPU's flags from Linux's /proc/cpuinfo on x86-64")
def test_isas_follow_the_cpu_flags_and_avx512_is_on_by_default():
    flags = _cpuinfo_flags()
    expected = []
    if {"avx512f", "avx512dq", "avx512vl", "avx512bw", "fma"} <= flags:
        expected.append("avx512")
    if {"avx2", "fma"} <= flags:
        expected.append("avx2")
    r = _run("import pyzen._C as C; print(' '.join(C.supported_isas()), C.isa())", PYZEN_ISA="")  # the default
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == expected + ["scalar", (expected + ["scalar"])[0]]
