"""`pyzen.cuda`: whether pyzen can use an NVIDIA GPU here, and if not, why."""
from __future__ import annotations

import functools
from types import ModuleType


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[ModuleType | None, str | None]:
    """The `_cuda` module and None, or None and the reason CUDA cannot be used."""
    try:
        from .. import _cuda
    except ImportError as e:
        return None, f"pyzen was built without CUDA (no CUDA compiler at build time, or PYZEN_CUDA=OFF): {e}"
    status = _cuda.status()
    if status != "ok":
        return None, status
    return _cuda, None


def is_available() -> bool:
    return _probe()[0] is not None


def unavailable_reason() -> str | None:
    """None when CUDA is usable, otherwise a sentence saying why not."""
    return _probe()[1]


def require() -> ModuleType:
    module, reason = _probe()
    if module is None:
        raise RuntimeError(f"CUDA is not available: {reason}")
    return module


def device_count() -> int:
    module = _probe()[0]
    return 0 if module is None else module.device_count()


def get_device_name(device: int = 0) -> str:
    return require().device_name(device)


def memory_allocated() -> int:
    """Bytes held by live CUDA arrays (rounded to the allocator's size classes); 0 without CUDA."""
    module = _probe()[0]
    return 0 if module is None else module.memory_allocated()


def memory_reserved() -> int:
    """Bytes the caching allocator holds from the driver: live plus cached; 0 without CUDA."""
    module = _probe()[0]
    return 0 if module is None else module.memory_reserved()


def empty_cache() -> None:
    """Return cached, unused device memory to the driver (no-op without CUDA)."""
    module = _probe()[0]
    if module is not None:
        module.empty_cache()


def synchronize() -> None:
    """Wait for every queued CUDA kernel; raises RuntimeError for an error one of them hit."""
    require().synchronize()


def manual_seed(seed: int) -> None:
    """Seeds pyzen's generator, which CUDA tensors draw from too."""
    from ..random import manual_seed as seed_all

    seed_all(seed)


manual_seed_all = manual_seed
