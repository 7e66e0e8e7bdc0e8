"""pyzen CUDA kernels and device queries. Mirrors cuda/bindings.cpp.

Present only in builds made with a CUDA compiler; imports without a GPU or driver.
"""

def device_count() -> int:
    """Number of usable CUDA devices; 0 when there is no driver or device (never raises)."""

def status() -> str:
    """'ok' when a CUDA device is usable, otherwise the reason (no driver, no device, ...)."""

def runtime_version() -> str:
    """Version of the CUDA runtime built into this module, e.g. '13.0'."""

def device_name(i: int) -> str:
    """Name of CUDA device i (ValueError for a bad index, RuntimeError on CUDA failure)."""

def compute_capability(i: int) -> tuple[int, int]:
    """(major, minor) compute capability of CUDA device i (ValueError for a bad index,
    RuntimeError on CUDA failure)."""
