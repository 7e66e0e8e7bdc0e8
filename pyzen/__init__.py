"""pyzen: a deep-learning framework with PyTorch's API and its own kernels."""
from __future__ import annotations

__version__ = "0.1.0"

from . import _C  # noqa: E402  (the native core; fails loudly if the build is broken)
from ._C import get_num_threads, set_num_threads  # the CPU kernels' OpenMP thread count, as torch.*
from ._device import device
from ._dtype import (
    bfloat16,
    bool_ as bool,
    dtype,
    float32,
    float64,
    get_default_dtype,
    int64,
    set_default_dtype,
)
from ._tensor import Size, Tensor
from . import _tensor_methods  # noqa: F401  (attaches operators and methods to Tensor)
from . import autograd, cuda, nn, ops, testing
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .creation import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, ones,
    multinomial, ones_like, rand, rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros,
    zeros_like,
)
from .ops import *  # noqa: F403  (the op table's names: add, matmul, softmax, ...)
from .ops import (
    all, amax, amin, any, bmm, broadcast_to, clip, clone, concat, concatenate, contiguous, equal,
    isfinite, mm, narrow, swapaxes, t, topk, unbind, unflatten,
)
from ._config import show_config
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from . import amp, metrics, optim, tokenizers, utils
from .amp import autocast
from .serialization import load, save

float = float32
double = float64
long = int64

__all__ = [name for name in dir() if not name.startswith("_")]
