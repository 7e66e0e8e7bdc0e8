"""Grad mode: whether new ops are recorded for backward. Thread-local, like PyTorch's."""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _State(threading.local):
    enabled = True


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it on exit."""

    _mode: bool

    def __new__(cls, func: Callable | None = None, *args: Any, **kwargs: Any):
        self = super().__new__(cls)
        if callable(func):  # bare `@no_grad` without parentheses
            self.__init__()
            return self(func)
        return self

    def __enter__(self) -> None:
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._prev

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
        self._prev = _state.enabled
        _state.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def __call__(self, func: F) -> F:
        _state.enabled = self._prev  # used as a decorator: only calls of `func` change the mode
        return super().__call__(func)

    def _args(self) -> tuple:
        return (self._mode,)
