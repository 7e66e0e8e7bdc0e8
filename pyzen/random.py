"""pyzen's random number generator: seeded by `pyzen.manual_seed`, independent of NumPy's
global state, so the same seed gives the same numbers whatever else the program draws."""
from __future__ import annotations

import numpy as np

_DEFAULT_SEED = 67280421310721  # PyTorch's default initial seed, so a fresh process is deterministic


class Generator:
    def __init__(self, seed: int = _DEFAULT_SEED) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> "Generator":
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed: expected an int seed, got {seed!r}")
        self._seed = int(seed)
        self._bits = None  # built on first draw: importing numpy.random costs import time
        return self

    @property
    def _np(self) -> "np.random.Generator":
        if self._bits is None:
            self._bits = np.random.Generator(np.random.PCG64(self._seed & ((1 << 128) - 1)))
        return self._bits

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._np.bit_generator.state

    def set_state(self, state: dict) -> None:
        self._np.bit_generator.state = state


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def seed() -> int:
    """Seed pyzen's generator from fresh OS entropy and return the seed."""
    s = int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)
    manual_seed(s)
    return s
