"""`pyzen.show_config()`: what this installation is and what it will run on."""
from __future__ import annotations

from . import _C, __version__, cuda


def config() -> dict[str, object]:
    import platform

    return {
        "pyzen": __version__,
        "python": platform.python_version(),
        "compiler": _C.compiler(),
        "openmp": _C.has_openmp(),
        "cpu isa": _C.isa(),
        "cpu isas supported": ", ".join(_C.supported_isas()),
        "bf16 path": _C.bf16_path(),
        "bf16 paths supported": ", ".join(_C.bf16_paths()) + (f" ({_C.bf16_note()})" if _C.bf16_note() else ""),
        "threads": _C.get_num_threads(),
        "cuda": f"available ({cuda.device_count()} devices)" if cuda.is_available() else f"not available: {cuda.unavailable_reason()}",
    }


def show_config() -> None:
    """Print the version, compiler, CPU ISA in use, thread count and CUDA availability."""
    items = config()
    width = max(len(k) for k in items)
    for key, value in items.items():
        print(f"{key:<{width}}  {value}")
