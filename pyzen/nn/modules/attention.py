"""MultiheadAttention (PyTorch's parameter layout) and TransformerEncoderLayer."""
from __future__ import annotations

import math
from typing import Any

from ... import creation, ops
from ..._dtype import dtype as DType
from ..._tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .activation import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm


class MultiheadAttention(Module):
    """Self or cross attention with PyTorch's parameters: in_proj_weight (3E, E),
    in_proj_bias (3E,), out_proj. Bool masks follow PyTorch: True means "do not attend"."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, batch_first: bool = False, device: Any = None, dtype: DType | None = None) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, dtype=dtype, device=device))
        self.in_proj_bias = Parameter(creation.zeros(3 * embed_dim, dtype=dtype, device=device)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, average_attn_weights: bool = True, is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        unbatched = query.ndim == 2
        if unbatched:  # (T, E): a batch of one
            query, key, value = (x.unsqueeze(1 if not self.batch_first else 0) for x in (query, key, value))
            key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
        if not self.batch_first:  # (T, B, E) -> (B, T, E)
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        b, tq, e = query.shape
        tk = key.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        heads = lambda x, t: x.reshape(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q = heads(F.linear(query, w_q, b_q), tq)
        k = heads(F.linear(key, w_k, b_k), tk)
        v = heads(F.linear(value, w_v, b_v), tk)
        if attn_mask is not None and attn_mask.ndim == 3:  # (B * heads, Tq, Tk), PyTorch's per-head layout
            attn_mask = attn_mask.reshape(b, self.num_heads, tq, tk)
        allowed = self._allowed(attn_mask, key_padding_mask, is_causal, b, tq, tk)
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.mT) * (1.0 / math.sqrt(self.head_dim))
            if allowed is not None:
                scores = scores.masked_fill(~allowed, -math.inf) if allowed.dtype.name == "bool" else scores + allowed
            weights = F.dropout(F.softmax(scores, -1), dropout_p, self.training)  # returned as applied, like PyTorch
            out = weights @ v
            weights = weights.mean(1) if average_attn_weights else weights
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout_p)
        out = self.out_proj(out.transpose(1, 2).reshape(b, tq, e))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(1 if not self.batch_first else 0)
            weights = None if weights is None else weights.squeeze(0)
        return out, weights

    @staticmethod
    def _allowed(attn_mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool, b: int, tq: int, tk: int) -> Tensor | None:
        """One mask in scaled_dot_product_attention's convention (bool True = attend, or additive)."""
        allowed = None
        if attn_mask is not None:
            allowed = ~attn_mask if attn_mask.dtype.name == "bool" else attn_mask
        elif is_causal:
            allowed = ops.tril(creation.ones(tq, tk, dtype=creation._dtype.bool_))
        if key_padding_mask is not None:
            keep = (~key_padding_mask).reshape(b, 1, 1, tk)
            if allowed is None:
                allowed = keep
            elif allowed.dtype.name == "bool":
                allowed = allowed & keep
            else:
                allowed = allowed.masked_fill(~keep, -math.inf)
        return allowed


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual; norm_first=True gives
    the pre-norm block (with is_causal=True, a GPT-style decoder block)."""

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1, activation: Any = "relu", layer_norm_eps: float = 1e-5,
        batch_first: bool = False, norm_first: bool = False, bias: bool = True, device: Any = None, dtype: DType | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in ("relu", "gelu"):
                raise ValueError(f"TransformerEncoderLayer: activation must be 'relu' or 'gelu', got {activation!r}")
            activation = F.relu if activation == "relu" else F.gelu
        self.activation = activation

    def forward(self, src: Tensor, src_mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: Tensor, mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool) -> Tensor:
        out = self.self_attn(x, x, x, key_padding_mask=key_padding_mask, need_weights=False, attn_mask=mask, is_causal=is_causal and mask is None)[0]
        return self.dropout1(out)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
