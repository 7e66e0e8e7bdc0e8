"""A PyTorch-style GPT training script runs unchanged after `import pyzen as torch` and learns."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pyzen

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "minigpt_torch_style.py")


def test_ported_torch_script_trains():
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyzen.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    r = subprocess.run([sys.executable, SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    m = re.search(r"FIRST ([\d.]+) LAST ([\d.]+) SAMPLE_LEN (\d+) LOG_VOCAB ([\d.]+)", r.stdout)
    assert m, r.stdout
    first, last, sample_len, log_vocab = float(m[1]), float(m[2]), int(m[3]), float(m[4])
    assert abs(first - log_vocab) < 0.5  # an untrained model is near uniform
    assert last < 0.6 * first  # and training on this repetitive text cuts the loss a lot
    assert sample_len == 21
