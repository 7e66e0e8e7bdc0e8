"""The corpus every machine with Python has: the standard library's own source files.

Files are split (by a hash of their path, so the split never changes) into training and
validation sets; text is byte-tokenised (vocab 256). The fine-tuning task labels a snippet
with the standard-library package its file belongs to."""
from __future__ import annotations

import os
import sysconfig
import zlib
from dataclasses import dataclass

import numpy as np

import pyzen

CLASSES = ("asyncio", "email", "importlib", "multiprocessing", "unittest", "xml")


def stdlib_files(root: str | None = None) -> list[str]:
    """Relative paths of the standard library's .py files, test suites and site-packages excluded."""
    root = root or sysconfig.get_paths()["stdlib"]
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__", "test", "tests", "idle_test"))
        files += [os.path.join(*parts, f) for f in sorted(filenames) if f.endswith(".py")]
    if not files:
        raise RuntimeError(f"no Python source files found under {root}: this Python has no standard library sources")
    return files


def is_validation(path: str, every: int = 10) -> bool:
    """One file in `every` goes to validation, picked by a stable hash of its path."""
    return zlib.crc32(path.encode()) % every == 0


def read_bytes(root: str, paths: list[str]) -> np.ndarray:
    chunks = []
    for p in paths:
        with open(os.path.join(root, p), "rb") as f:
            chunks.append(np.frombuffer(f.read() + b"\n", dtype=np.uint8))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)


@dataclass
class Corpus:
    train: np.ndarray  # uint8 bytes
    val: np.ndarray

    @classmethod
    def load(cls, max_bytes: int | None = None) -> "Corpus":
        root = sysconfig.get_paths()["stdlib"]
        files = stdlib_files(root)
        train = read_bytes(root, [f for f in files if not is_validation(f)])
        val = read_bytes(root, [f for f in files if is_validation(f)])
        if max_bytes:
            train, val = train[:max_bytes], val[: max(max_bytes // 10, 1)]
        return cls(train, val)

    def batch(self, split: str, batch_size: int, block_size: int) -> tuple[pyzen.Tensor, pyzen.Tensor]:
        """Random windows: inputs and the same windows shifted by one byte as targets."""
        data = self.train if split == "train" else self.val
        starts = pyzen.randint(0, len(data) - block_size - 1, (batch_size,)).numpy()
        rows = np.stack([data[s : s + block_size + 1] for s in starts]).astype(np.int64)
        return pyzen.from_numpy(rows[:, :-1].copy()), pyzen.from_numpy(rows[:, 1:].copy())

    def unigram_loss(self) -> float:
        """Cross-entropy (nats/byte) of the validation bytes under the training bytes' frequencies:
        the loss a model that ignores context would reach."""
        counts = np.bincount(self.train, minlength=256).astype(np.float64) + 1.0
        logp = np.log(counts / counts.sum())
        return float(-logp[self.val].mean())


@dataclass
class Snippets:
    """Fixed-length byte snippets labelled with their package, split by file."""

    x: pyzen.Tensor  # (N, block_size) int64
    y: pyzen.Tensor  # (N,) int64 class index

    @classmethod
    def load(cls, split: str, block_size: int, per_file: int = 8) -> "Snippets":
        root = sysconfig.get_paths()["stdlib"]
        rows, labels = [], []
        gen = np.random.default_rng(0 if split == "train" else 1)
        for path in stdlib_files(root):
            package = path.split(os.sep)[0]
            if package not in CLASSES or is_validation(path, every=4) != (split == "test"):
                continue
            data = read_bytes(root, [path])
            if len(data) <= block_size:
                continue
            for s in gen.integers(0, len(data) - block_size, per_file):
                rows.append(data[s : s + block_size])
                labels.append(CLASSES.index(package))
        x = np.stack(rows).astype(np.int64)
        return cls(pyzen.from_numpy(x), pyzen.tensor(labels, dtype=pyzen.long))
