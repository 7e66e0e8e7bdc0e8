"""Thread-local autograd switches, like PyTorch's: grad mode (whether new ops are recorded
for backward) and anomaly mode (whether backward checks every gradient it computes for NaN)."""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled = True


class _AnomalyState(threading.local):
    enabled = False


_state = _State()
_anomaly = _AnomalyState()


def is_grad_enabled() -> bool:
    return _state.enabled


def is_anomaly_enabled() -> bool:
    return _anomaly.enabled


class _GradMode:
    """Context manager and decorator that sets a mode and restores it on exit."""

    _store: threading.local = _state  # which switch this class sets
    _mode: bool

    def __new__(cls, func: Callable | None = None, *args: Any, **kwargs: Any):
        self = super().__new__(cls)
        if callable(func):  # bare `@no_grad` without parentheses
            self.__init__()
            return self(func)
        return self

    def __enter__(self) -> None:
        self._prev = self._store.enabled
        self._store.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        self._store.enabled = self._prev

    def __call__(self, func: F) -> F:
        mode_cls, args = type(self), self._args()

        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            with mode_cls(*args):
                return func(*a, **kw)

        return wrapper  # type: ignore[return-value]

    def _args(self) -> tuple:
        return ()


class no_grad(_GradMode):
    """Disable recording: `with pyzen.no_grad():` or `@pyzen.no_grad()`."""

    def __init__(self) -> None:
        self._mode = False


class enable_grad(_GradMode):
    def __init__(self) -> None:
        self._mode = True


class set_grad_enabled(_GradMode):
    """Set grad mode to `mode`: takes effect at once, and as a context manager restores on exit."""

    def __new__(cls, mode: bool):
        return object.__new__(cls)

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = self._store.enabled
        self._store.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __call__(self, func: F) -> F:
        self._store.enabled = self._prev  # used as a decorator: only calls of `func` change the mode
        return super().__call__(func)

    def _args(self) -> tuple:
        return (self._mode,)


class detect_anomaly(_GradMode):
    """Check every gradient backward computes for NaN, and raise naming the op and the line of
    user code that created it: `with pyzen.autograd.detect_anomaly():` or as a decorator.
    Slow (one pass over every gradient): for debugging only."""

    _store = _anomaly

    def __init__(self) -> None:
        self._mode = True


class set_detect_anomaly(set_grad_enabled):
    """Set anomaly mode to `mode`: takes effect at once, and as a context manager restores on exit."""

    _store = _anomaly
