"""`pyzen.nn.functional`: the functional forms of the ops networks use."""
from __future__ import annotations

from ..ops import embedding, gelu, log_softmax, relu, sigmoid, silu, softmax, tanh

__all__ = ["embedding", "gelu", "log_softmax", "relu", "sigmoid", "silu", "softmax", "tanh"]
