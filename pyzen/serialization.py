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
fsync'ed, then renamed over the destination with os.replace, so a crash or SIGKILL mid-save leaves
the previous checkpoint intact. The temporary file is hidden and never ends in the checkpoint's
own suffix (".ck.safetensors.<host>.<pid>.<random>.tmp"), so globs and `load` never mistake it for
a checkpoint; one left by a killed writer is deleted by the next save to the same path once its
writer's process is gone (POSIX only; elsewhere it stays until removed by hand).

Reads validate the whole header before allocating anything for tensors: its length against the
file's size, its JSON (duplicate keys are rejected, not resolved), every tensor's dtype, shape and
byte range, and that the tensors tile the data section exactly (no overlaps, gaps or trailing
bytes, as the safetensors format requires). Then each tensor is read straight into its own array,
so memory follows the file's real size, never a size the file claims; file objects are read
sequentially (streams that cannot seek work too). Any invalid file (truncated, corrupted, a pickle
or PyTorch zip, random bytes, ...) raises CheckpointError, a ValueError naming the file and the
problem.

safetensors is an optional dependency (NumPy is pyzen's only required one), needed by `save`
only: install it with ``pip install "pyzen[train]"``.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
from typing import IO, Any, Union

import numpy as np

from . import _dtype
from ._tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

FileLike = Union[str, "os.PathLike[str]", IO[bytes]]

_STRUCTURE_KEY = "pyzen.structure"
_FORMAT_KEY = "format"
_FORMAT = "pyzen"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
_CHUNK = 64 * 1024 * 1024
_STREAM_CHUNK = 1024 * 1024  # read() may allocate its whole request up front, even if fewer bytes arrive
# names this machine in temporary file names (only characters that need no escaping in a regex);
# os.uname, not socket.gethostname: importing socket would cost every `import pyzen` ~5 ms
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", os.uname().nodename if hasattr(os, "uname") else "")[:64] or "host"
# safetensors dtype names -> the (little-endian) NumPy dtypes load reads them as
_ST_DTYPES = {
    k: np.dtype(v)
    for k, v in {
        "BOOL": "u1", "U8": "u1", "I8": "i1", "I16": "<i2", "U16": "<u2", "F16": "<f2",
        "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8",
    }.items()
}
_ST_UNSUPPORTED = ("BF16", "F8_E5M2", "F8_E4M3")  # legal in safetensors, no NumPy dtype
_TAGS = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__float__", "__dtype__")


def _safetensors() -> Any:
    try:
        import safetensors.numpy as st_numpy
    except ImportError as e:
        raise ImportError(
            'pyzen.save needs the "safetensors" package, which is optional: '
            'install it with `pip install "pyzen[train]"` (or `pip install safetensors`)'
        ) from e
    return st_numpy


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
    st_numpy = _safetensors()
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
    directory, base = os.path.split(os.path.abspath(path))
    _remove_stale_temps(directory, base)
    tmp = os.path.join(directory, f".{base}.{_HOST}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
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


def _remove_stale_temps(directory: str, base: str) -> None:
    """Delete the temporary files of earlier saves to this path whose writer died (e.g. SIGKILL or OOM
    mid-save), so that they cannot pile up. A temp file is ".<name>.<host>.<pid>.<random>.tmp"; only
    those from this host whose process no longer exists are removed, never one still being written
    (a dead writer's pid reused by a live process merely delays the removal)."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX (on Windows it kills it)
        return
    pattern = re.compile(rf"\.{re.escape(base)}\.{_HOST}\.([0-9]+)\.[0-9a-f]+\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for entry in names:
        match = pattern.fullmatch(entry)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(directory, entry))
        except OSError:  # removed by another saver meanwhile, or not ours to remove: harmless
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # e.g. another user's process: treat as alive
        return True
    return True


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


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    """json.loads would silently keep the last of two equal keys; other parsers may keep the first."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def _read_exact(fh: IO[bytes], n: int, sized: bool) -> np.ndarray:
    """Read up to `n` bytes into a new uint8 array (shorter only at end of file).

    `sized`: `n` was already checked against the file's size, so one buffer of `n` bytes is safe.
    Otherwise (a stream of unknown length) memory grows only with the bytes that actually arrive."""
    if sized and hasattr(fh, "readinto"):
        out = np.empty(n, np.uint8)
        view, pos = memoryview(out), 0
        while pos < n:
            got = fh.readinto(view[pos:])
            if not got:
                return out[:pos]
            pos += got
        return out
    parts, pos = [], 0
    while pos < n:
        chunk = fh.read(min(n - pos, _STREAM_CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        pos += len(chunk)
    out = np.empty(pos, np.uint8)
    pos = 0
    for chunk in parts:
        out[pos : pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
        pos += len(chunk)
    return out


def _read_header(fh: IO[bytes], size: int | None, name: str) -> tuple[dict, list[tuple[int, int, str]]]:
    """Read and validate the safetensors header from `fh`, whose remaining length is `size` bytes
    (None: a stream of unknown length). Returns the header and its tensors' (begin, end, key) in file
    order, checked to tile the data section exactly: no overlaps, no gaps, no bytes past the end."""
    head = fh.read(8)
    if not isinstance(head, bytes):
        raise TypeError(f"load: {name} must be opened in binary mode ('rb'), its read() returned {type(head).__name__}")
    if len(head) < 8:
        what = "empty" if not head else f"only {len(head)} bytes long"
        raise CheckpointError(f"load: {name} is not a safetensors checkpoint: the file is {what}")
    n = int.from_bytes(head, "little")
    hint = _foreign_hint(head)
    if size is not None and n > size - 8:
        raise CheckpointError(
            f"load: {name} is not a valid safetensors checkpoint: its header length field claims {n} bytes but "
            f"only {size - 8} follow (truncated or not a safetensors file){hint}"
        )
    if n > _MAX_HEADER:
        raise CheckpointError(f"load: {name}: its header length field claims {n} bytes, over the {_MAX_HEADER}-byte limit{hint}")
    raw = _read_exact(fh, n, size is not None).tobytes()
    if len(raw) < n:
        raise CheckpointError(
            f"load: {name} is not a valid safetensors checkpoint: its header length field claims {n} bytes but "
            f"only {len(raw)} follow (truncated file){hint}"
        )
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        raise CheckpointError(f"load: {name}: the header names {e.args[0]!r} twice (ambiguous; corrupted file)") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError(f"load: {name} is not a valid safetensors checkpoint: its header is not valid JSON{hint}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {name}: the safetensors header is not a JSON object (corrupted file)")
    data_len = None if size is None else size - 8 - n
    ranges = []
    for key, info in header.items():
        if key == "__metadata__":
            if info is not None and (not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values())):
                raise CheckpointError(f"load: {name}: the header's __metadata__ is not a map of strings (corrupted file)")
            continue
        ranges.append(_check_entry(name, key, info, data_len))
    ranges.sort()
    covered = 0
    for i, (begin, end, key) in enumerate(ranges):
        if begin < covered:
            b0, e0, k0 = ranges[i - 1]
            raise CheckpointError(
                f"load: {name}: tensors {k0!r} (bytes {b0}..{e0}) and {key!r} (bytes {begin}..{end}) overlap; "
                "safetensors tensors must not share bytes (corrupted or hand-made file)"
            )
        if begin > covered:
            raise CheckpointError(f"load: {name}: bytes {covered}..{begin} of the data section belong to no tensor (corrupted file)")
        covered = end
    if data_len is not None and covered != data_len:
        raise CheckpointError(
            f"load: {name}: the data section has {data_len} bytes but its tensors cover only {covered} "
            "(trailing bytes: corrupted file)"
        )
    return header, ranges


def _check_entry(name: str, key: str, info: Any, data_len: int | None) -> tuple[int, int, str]:
    bad = f"load: {name}: tensor {key!r} has a corrupted header entry"
    if not isinstance(info, dict):
        raise CheckpointError(bad)
    dt, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not isinstance(dt, str):  # (an unhashable dtype, e.g. a JSON object, would break the lookups below)
        raise CheckpointError(f"{bad}: invalid dtype {dt!r}")
    if dt in _ST_UNSUPPORTED:
        raise CheckpointError(f"load: {name}: tensor {key!r} has dtype {dt}, which pyzen.load cannot read yet")
    if dt not in _ST_DTYPES:
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
    if not 0 <= begin <= end or (data_len is not None and end > data_len):
        have = "" if data_len is None else f" but the data section has only {data_len} bytes"
        raise CheckpointError(f"load: {name}: tensor {key!r} claims bytes {begin}..{end}{have} (truncated or corrupted file)")
    need = math.prod(shape) * _ST_DTYPES[dt].itemsize  # a Python int: absurd shapes cannot overflow
    if end - begin != need:
        raise CheckpointError(f"{bad}: shape {shape} and dtype {dt} need {need} bytes, offsets give {end - begin}")
    return begin, end, key


def _read_tensors(fh: IO[bytes], header: dict, ranges: list, sized: bool, name: str) -> dict[str, np.ndarray]:
    """Read the data section in file order (no seeking, so streams work too)."""
    arrays = {}
    for begin, end, key in ranges:
        raw = _read_exact(fh, end - begin, sized)
        if len(raw) < end - begin:
            raise CheckpointError(f"load: {name}: the file ends inside tensor {key!r} (bytes {begin}..{end}): truncated file")
        info = header[key]
        arr = raw.view(_ST_DTYPES[info["dtype"]])
        if info["dtype"] == "BOOL":  # any nonzero byte is True: keeps NumPy bools canonical (0 or 1)
            arr = arr != 0
        try:
            arr = arr.reshape(info["shape"])
        except ValueError:
            raise CheckpointError(f"load: {name}: tensor {key!r} has {len(info['shape'])} dimensions, more than NumPy supports") from None
        arrays[key] = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if not sized and fh.read(1):
        raise CheckpointError(f"load: {name}: there are bytes after the last tensor (corrupted file)")
    return arrays


def _foreign_hint(head: bytes) -> str:
    if head[:1] == b"\x80":
        return " (it looks like a pickle file, e.g. from torch.save; pyzen.load never unpickles)"
    if head[:2] == b"PK":
        return " (it looks like a zip archive, e.g. a PyTorch .pt file; pyzen.load reads safetensors files only)"
    return ""


def _remaining_size(f: IO[bytes]) -> int | None:
    """Bytes from a file object's position to its end; None for streams that cannot seek."""
    try:
        if not f.seekable():  # type: ignore[union-attr]
            return None
        pos = f.tell()
        size = f.seek(0, io.SEEK_END) - pos
        f.seek(pos)
        return size
    except (AttributeError, OSError):
        return None


def load(f: FileLike, map_location: Any = None, *, weights_only: bool = True) -> Any:
    """Load what `save` wrote (Tensors come back as pyzen Tensors that own their memory).

    `f` is a path or a binary file object read from its current position to its end. `map_location`
    may be None or the CPU; `weights_only` is accepted for PyTorch compatibility and must stay True:
    pyzen's checkpoints hold data only, and loading never runs code. Raises CheckpointError (a
    ValueError) naming the file and the problem for anything that is not a valid checkpoint."""
    if not weights_only:
        raise ValueError("load: weights_only=False is not supported; pyzen checkpoints never contain code")
    if map_location is not None and str(map_location) != "cpu":
        from ._device import device

        if device(map_location).type != "cpu":
            raise ValueError(f"load: map_location={map_location!r} is not supported yet; load on the CPU and move with .to()")
    if hasattr(f, "read"):
        name = repr(getattr(f, "name", "<file object>"))
        size = _remaining_size(f)  # type: ignore[arg-type]
        header, ranges = _read_header(f, size, name)  # type: ignore[arg-type]
        arrays = _read_tensors(f, header, ranges, size is not None, name)  # type: ignore[arg-type]
    else:
        if not isinstance(f, (str, os.PathLike)):
            raise TypeError(f"load: f must be a path or a binary file object, got {type(f).__name__}")
        name = repr(os.fspath(f))
        with open(f, "rb") as fh:
            header, ranges = _read_header(fh, os.fstat(fh.fileno()).st_size, name)
            arrays = _read_tensors(fh, header, ranges, True, name)
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
