"""`pyzen.save` / `pyzen.load`: checkpoints as safetensors files. Loading never executes code.

What can be saved: Tensors, NumPy arrays, pyzen dtypes, None, bools, ints (any size), floats
(nan and inf included), strings, and lists, tuples and dicts of those -- e.g.
``{"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 10,
"rng": pyzen.get_rng_state()}``. NumPy scalars are saved as the equal Python number.

File layout: a standard safetensors file. Each tensor is stored under a path-like name ("model/
wte.weight", "optimizer/state/0/exp_avg"; a flat dict of tensors keeps its own keys, so the file
reads like any safetensors checkpoint). Everything else -- the nesting, dict key types, tuples,
plain values -- is JSON in the header's metadata under "pyzen.structure", with each tensor
replaced by a reference to its name. A safetensors file without that entry (written by other
tools) loads as a flat dict of name -> Tensor.

Shared tensors: a tensor that appears several times (the same object, or views of exactly the
same memory with the same shape, strides and dtype, such as tied weights) is stored once, and
`load` returns one Tensor object in each place it appeared. Tensors that only partly overlap are
stored as separate copies. `nn.Parameter` loads as a plain Tensor (as in a state dict).

Writes are atomic: the file is written to a temporary file in the same directory, flushed and
fsync'ed, then renamed over the destination with os.replace, so a crash mid-save leaves the
previous checkpoint intact. Reads check the header (its size before anything is allocated, its
JSON, every tensor's dtype, shape and byte range) and raise ValueError naming the file and the
problem for truncated, corrupted or foreign files (a pickle or a PyTorch zip, random bytes, ...).

safetensors is an optional dependency (NumPy is pyzen's only required one): install it with
``pip install "pyzen[train]"``.
"""
from __future__ import annotations

import io
import json
import math
import os
from typing import IO, Any, Union

import numpy as np

from . import _dtype
from ._tensor import Tensor

__all__ = ["save", "load"]

FileLike = Union[str, "os.PathLike[str]", IO[bytes]]

_STRUCTURE_KEY = "pyzen.structure"
_FORMAT_KEY = "format"
_FORMAT = "pyzen"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_CHUNK = 64 * 1024 * 1024
# safetensors dtype names -> item sizes in bytes (the ones a header may legally name)
_ST_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}
_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__", "__dtype__")


def _safetensors() -> tuple[Any, Any]:
    try:
        import safetensors.numpy as st_numpy
        from safetensors import safe_open
    except ImportError as e:
        raise ImportError(
            'pyzen.save and pyzen.load need the "safetensors" package, which is optional: '
            'install it with `pip install "pyzen[train]"` (or `pip install safetensors`)'
        ) from e
    return st_numpy, safe_open


# ---------------------------------------------------------------- encoding (save)
class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.shared: dict[tuple, str] = {}

    def _store(self, arr: np.ndarray, path: list[str]) -> str:
        key = None
        if arr.size:
            key = (arr.__array_interface__["data"][0], arr.shape, arr.strides, arr.dtype.str)
            if key in self.shared:
                return self.shared[key]
        base = "/".join(path) or "tensor"
        name, n = base, 1
        while name in self.arrays:
            name, n = f"{base}#{n}", n + 1
        self.arrays[name] = np.asarray(arr, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if key is not None:
            self.shared[key] = name
        return name

    def encode(self, obj: Any, path: list[str]) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return self.encode(obj.item(), path)
        if isinstance(obj, Tensor):
            return {"__tensor__": self._store(obj._numpy(), path)}
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in "biuf" or obj.dtype.byteorder == ">":
                raise TypeError(f"save: cannot save a NumPy array of dtype {obj.dtype} at {_where(path)}")
            return {"__ndarray__": self._store(obj, path)}
        if isinstance(obj, _dtype.dtype):
            return {"__dtype__": obj.name}
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]
        if isinstance(obj, dict):
            if all(isinstance(k, str) and not k.startswith("__") for k in obj):
                return {k: self.encode(v, path + [k]) for k, v in obj.items()}
            pairs = []
            for k, v in obj.items():
                if isinstance(k, (Tensor, np.ndarray)) or not _is_key(k):
                    raise TypeError(f"save: cannot save a dict key of type {type(k).__name__} at {_where(path)}")
                pairs.append([self.encode(k, path + ["key"]), self.encode(v, path + [str(k)])])
            return {"__dict__": pairs}
        raise TypeError(
            f"save: cannot save an object of type {type(obj).__name__} at {_where(path)}; pyzen.save stores "
            "Tensors, NumPy arrays, numbers, strings, None and lists/tuples/dicts of them (never pickles)"
        )


def _is_key(k: Any) -> bool:
    if k is None or isinstance(k, (bool, int, float, str, _dtype.dtype)):
        return True
    return isinstance(k, tuple) and all(_is_key(v) for v in k)


def _where(path: list[str]) -> str:
    return "/".join(path) if path else "the top level"


def save(obj: Any, f: FileLike) -> None:
    """Save `obj` (a Tensor, a state dict, or a nested structure of them) as a safetensors file.

    `f` is a path (str or os.PathLike; written atomically) or a binary file object."""
    st_numpy, _ = _safetensors()
    enc = _Encoder()
    structure = enc.encode(obj, [])
    metadata = {_FORMAT_KEY: _FORMAT, _STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"))}
    data = st_numpy.save(enc.arrays, metadata=metadata)
    if hasattr(f, "write"):
        _write_all(f, data)  # type: ignore[arg-type]
        return
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"save: f must be a path or a binary file object, got {type(f).__name__}")
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_all(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _write_all(fh: IO[bytes], data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _CHUNK):
        fh.write(view[start : start + _CHUNK])


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- decoding (load)
class CheckpointError(ValueError):
    """A file that is not a valid pyzen/safetensors checkpoint (truncated, corrupted or foreign)."""


def _read_header(fh: IO[bytes], size: int, name: str) -> dict:
    """Validate the safetensors header of an open file of `size` bytes; return it parsed."""
    if size < 8:
        what = "empty" if size == 0 else f"only {size} bytes long"
        raise CheckpointError(f"load: {name} is not a safetensors checkpoint: the file is {what}")
    head = fh.read(8)
    if len(head) != 8:
        raise CheckpointError(f"load: {name}: could not read the 8-byte header length (truncated file)")
    n = int.from_bytes(head, "little")
    hint = _foreign_hint(head)
    if n > size - 8:
        raise CheckpointError(
            f"load: {name} is not a valid safetensors checkpoint: its header length field claims {n} bytes but "
            f"only {size - 8} follow (truncated or not a safetensors file){hint}"
        )
    if n > _MAX_HEADER:
        raise CheckpointError(f"load: {name}: header of {n} bytes exceeds the {_MAX_HEADER}-byte limit{hint}")
    raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"load: {name} is not a valid safetensors checkpoint: its header is not valid JSON{hint}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {name}: the safetensors header is not a JSON object (corrupted file)")
    data_len = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise CheckpointError(f"load: {name}: the header's __metadata__ is not a map of strings (corrupted file)")
            continue
        _check_entry(name, key, info, data_len)
    return header


def _check_entry(name: str, key: str, info: Any, data_len: int) -> None:
    bad = f"load: {name}: tensor {key!r} has a corrupted header entry"
    if not isinstance(info, dict):
        raise CheckpointError(bad)
    dt, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dt not in _ST_SIZES:
        raise CheckpointError(f"{bad}: unknown dtype {dt!r}")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise CheckpointError(f"{bad}: invalid shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise CheckpointError(f"{bad}: invalid data_offsets {offsets!r}")
    begin, end = offsets
    if not 0 <= begin <= end <= data_len:
        raise CheckpointError(
            f"load: {name}: tensor {key!r} claims bytes {begin}..{end} but the data section has only {data_len} "
            "bytes (truncated or corrupted file)"
        )
    if end - begin != math.prod(shape) * _ST_SIZES[dt]:
        raise CheckpointError(f"{bad}: shape {shape} and dtype {dt} need {math.prod(shape) * _ST_SIZES[dt]} bytes, offsets give {end - begin}")


def _foreign_hint(head: bytes) -> str:
    if head[:1] == b"\x80":
        return " (it looks like a pickle file, e.g. from torch.save; pyzen.load never unpickles)"
    if head[:2] == b"PK":
        return " (it looks like a zip archive, e.g. a PyTorch .pt file; pyzen.load reads safetensors files only)"
    return ""


def load(f: FileLike, map_location: Any = None, *, weights_only: bool = True) -> Any:
    """Load what `save` wrote (Tensors come back as pyzen Tensors that own their memory).

    `map_location` may be None or the CPU; `weights_only` is accepted for PyTorch compatibility
    and must stay True: pyzen's checkpoints hold data only, and loading never runs code."""
    if not weights_only:
        raise ValueError("load: weights_only=False is not supported; pyzen checkpoints never contain code")
    if map_location is not None and str(map_location) != "cpu":
        from ._device import device

        if device(map_location).type != "cpu":
            raise ValueError(f"load: map_location={map_location!r} is not supported yet; load on the CPU and move with .to()")
    st_numpy, safe_open = _safetensors()
    if hasattr(f, "read"):
        data = f.read()  # type: ignore[union-attr]
        name = repr(getattr(f, "name", "<file object>"))
        header = _read_header(io.BytesIO(data), len(data), name)
        try:
            arrays = st_numpy.load(data)
        except Exception as e:  # safetensors raises its own SafetensorError and others
            raise CheckpointError(f"load: {name} is not a valid safetensors checkpoint: {e}") from None
    else:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
        path = os.fspath(f)
        name = repr(path)
        with open(path, "rb") as fh:
            header = _read_header(fh, os.fstat(fh.fileno()).st_size, name)
        try:
            with safe_open(path, framework="np") as sf:
                arrays = {k: sf.get_tensor(k) for k in sf.keys()}
        except Exception as e:
            raise CheckpointError(f"load: {name} is not a valid safetensors checkpoint: {e}") from None
    arrays = {k: np.array(v, copy=True) for k, v in arrays.items()}  # own, writable memory
    metadata = header.get("__metadata__") or {}
    if _STRUCTURE_KEY not in metadata:  # a safetensors file from another tool: a flat dict
        return {k: Tensor._make(_to_supported(v, name, k)) for k, v in arrays.items()}
    try:
        return _Decoder(arrays, name).decode(json.loads(metadata[_STRUCTURE_KEY]))
    except (ValueError, TypeError, RecursionError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"load: {name}: the checkpoint's structure metadata is corrupted ({e})") from None


def _to_supported(arr: np.ndarray, name: str, key: str) -> np.ndarray:
    try:
        return arr.astype(_dtype.storage_dtype(arr.dtype), copy=False)
    except TypeError as e:
        raise CheckpointError(f"load: {name}: tensor {key!r}: {e}") from None


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray], name: str) -> None:
        self.arrays, self.name = arrays, name
        self.tensors: dict[str, Tensor] = {}

    def _array(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.arrays:
            raise CheckpointError(f"load: {self.name}: the structure refers to a tensor {key!r} that the file lacks (corrupted file)")
        return self.arrays[key]

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            raise CheckpointError(f"load: {self.name}: unexpected {type(node).__name__} in the structure metadata")
        if len(node) == 1:
            (tag, value), = node.items()
            if tag == "__tensor__":
                if value not in self.tensors:
                    arr = self._array(value)
                    if arr.dtype not in _dtype._FROM_NP:
                        raise CheckpointError(f"load: {self.name}: tensor {value!r} has unsupported dtype {arr.dtype}")
                    self.tensors[value] = Tensor._make(arr)
                return self.tensors[value]
            if tag == "__ndarray__":
                return self._array(value)
            if tag == "__tuple__" and isinstance(value, list):
                return tuple(self.decode(v) for v in value)
            if tag == "__float__" and value in ("nan", "inf", "-inf"):
                return float(value)
            if tag == "__dtype__" and isinstance(value, str):
                d = getattr(_dtype, value if value != "bool" else "bool_", None)
                if not isinstance(d, _dtype.dtype):
                    raise CheckpointError(f"load: {self.name}: unknown dtype {value!r} in the structure metadata")
                return d
            if tag == "__dict__" and isinstance(value, list):
                out = {}
                for pair in value:
                    if not isinstance(pair, list) or len(pair) != 2:
                        raise CheckpointError(f"load: {self.name}: malformed dict entry in the structure metadata")
                    out[self.decode(pair[0])] = self.decode(pair[1])
                return out
            if tag in _TAGS:
                raise CheckpointError(f"load: {self.name}: malformed {tag} entry in the structure metadata")
        return {k: self.decode(v) for k, v in node.items()}
