"""pyzen CPU kernels (C++, OpenMP, run-time ISA dispatch). Mirrors csrc/bindings.cpp."""

from typing import Literal, overload

import numpy as np
import numpy.typing as npt

@overload
def matmul(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """Batched matrix product: a (B, M, K) @ b (B, K, N) [+ bias] -> new C-contiguous (B, M, N).

    Both arrays must be float32 or both float64 (no conversion is done); any strides,
    including 0 (broadcast) and negative, are accepted. Float32 accumulates in float32.
    bias: None or a C-contiguous (N,) array of the same dtype, added to every row.
    Raises ValueError for bad shapes or strides, TypeError for bad dtypes or non-arrays.
    """
@overload
def matmul(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], bias: npt.NDArray[np.float64] | None = None
) -> npt.NDArray[np.float64]: ...
def matmul_bf16(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None = None
) -> npt.NDArray[np.float32]:
    """Autocast's bfloat16 product: float32 a (B, M, K) @ b (B, K, N) -> float32 (B, M, N),
    the operands rounded to bfloat16 (nearest even; float32 denormals flush to zero), the
    products accumulated in float32, on the active bfloat16 path ('amx' or 'avx512_bf16').
    Any strides and an optional float32 bias, as matmul. Raises ValueError on the 'float32' path."""

def round_bf16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A C-contiguous float32 array rounded to the nearest bfloat16 (ties to even), as float32:
    autocast's operands where a kernel computes in float32. Denormals and NaN are kept."""

def _matmul_blocking(k: int, f64: bool = False) -> dict[str, int]: ...

def gelu_forward(x: npt.NDArray[np.floating], approximate: Literal["none", "tanh"] = "none") -> npt.NDArray[np.floating]:
    """GELU of a C-contiguous float32/float64 array: exact (erf) or approximate='tanh'."""

def gelu_backward(
    grad: npt.NDArray[np.floating], x: npt.NDArray[np.floating], approximate: Literal["none", "tanh"] = "none"
) -> npt.NDArray[np.floating]:
    """grad * GELU'(x) for C-contiguous arrays of one shape and dtype."""

def attention_forward(
    q: npt.NDArray[np.floating],
    k: npt.NDArray[np.floating],
    v: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | npt.NDArray[np.floating] | None = None,
    is_causal: bool = False,
    scale: float = 1.0,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """Fused softmax attention: (out, lse) for q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv).

    out = softmax(q k^T * scale + mask) v of shape (..., Tq, Dv); lse (..., Tq) is the
    log-sum-exp of the masked, scaled scores. q, k, v: one dtype, float32 or float64, equal
    leading dims, unit stride along the last dim. mask: None, or bool (True = attend) /
    additive of q's dtype with shape exactly (..., Tq, Tk) (any strides). is_causal: query i
    attends keys j <= i. Fully masked rows give out = NaN and lse = -inf. Releases the GIL.
    """

def attention_forward_bf16(
    q: npt.NDArray[np.float32], k: npt.NDArray[np.float32], v: npt.NDArray[np.float32], is_causal: bool = False,
    scale: float = 1.0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """attention_forward under bfloat16 autocast, on AMX tiles: q, k, v (and the probabilities)
    rounded to bfloat16, float32 accumulation and softmax. No mask; D and Dv up to 256; only on
    the 'amx' bfloat16 path (ValueError otherwise). Returns (out, lse) as attention_forward."""

def attention_backward_bf16(
    grad: npt.NDArray[np.float32], q: npt.NDArray[np.float32], k: npt.NDArray[np.float32],
    v: npt.NDArray[np.float32], out: npt.NDArray[np.float32], lse: npt.NDArray[np.float32],
    is_causal: bool = False, scale: float = 1.0,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(dq, dk, dv) for attention_forward_bf16 on AMX tiles: grad, q, k, v rounded to bfloat16,
    and the probabilities and their gradients too for the products; float32 accumulation."""

def attention_backward(
    grad: npt.NDArray[np.floating],
    q: npt.NDArray[np.floating],
    k: npt.NDArray[np.floating],
    v: npt.NDArray[np.floating],
    out: npt.NDArray[np.floating],
    lse: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | npt.NDArray[np.floating] | None = None,
    is_causal: bool = False,
    scale: float = 1.0,
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """(dq, dk, dv) for attention_forward, recomputing the probabilities from lse. Fully
    masked rows contribute nothing; results do not depend on the thread count."""

def layer_norm_forward(
    x: npt.NDArray[np.floating], weight: npt.NDArray[np.floating] | None, bias: npt.NDArray[np.floating] | None, eps: float
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """Layer norm over the last dim of a C-contiguous float32/float64 x (..., C); weight, bias:
    (C,) of x's dtype or None. Returns (out, mean, rstd); mean, rstd have shape x.shape[:-1]."""

def layer_norm_backward(
    g: npt.NDArray[np.floating], x: npt.NDArray[np.floating], weight: npt.NDArray[np.floating] | None,
    mean: npt.NDArray[np.floating], rstd: npt.NDArray[np.floating], need_bias: bool
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating] | None, npt.NDArray[np.floating] | None]:
    """(dx, dweight or None, dbias or None) for layer_norm_forward, in one sweep over the rows;
    bitwise independent of the thread count."""

def cross_entropy_forward(
    logits: npt.NDArray[np.floating], target: npt.NDArray[np.int64], ignore_index: int, label_smoothing: float
) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.floating]]:
    """(losses, lse), each (N,), for C-contiguous logits (N, C) and int64 target (N,); losses are 0
    where target == ignore_index. IndexError for a target outside [0, C)."""

def cross_entropy_backward(
    g: npt.NDArray[np.floating], logits: npt.NDArray[np.floating], target: npt.NDArray[np.int64],
    lse: npt.NDArray[np.floating], ignore_index: int, label_smoothing: float
) -> npt.NDArray[np.floating]:
    """d(sum_i g[i] * losses[i]) / d(logits) for cross_entropy_forward: a new (N, C) array."""

def adamw_step(
    params: list[npt.NDArray[np.floating]],
    grads: list[npt.NDArray[np.floating]],
    exp_avgs: list[npt.NDArray[np.floating]],
    exp_avg_sqs: list[npt.NDArray[np.floating]],
    max_exp_avg_sqs: list[npt.NDArray[np.floating]] | None,
    steps: list[float],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    maximize: bool,
) -> None:
    """One Adam (decoupled=False) or AdamW (decoupled=True) step over every parameter, in place,
    in one native call. All arrays C-contiguous, entry i shaped and typed like params[i]."""

def fma_loop(iters: int) -> int:
    """Run float32 FMA chains on every thread with the active ISA; returns the FLOPs done."""

def memory_bandwidth(bytes_per_thread: int, rounds: int, mode: Literal["read", "copy", "update"]) -> float:
    """Bytes read plus written per second when every thread streams `rounds` times over a
    private working set of bytes_per_thread: 'read' (sum), 'copy' or 'update' (y += x)."""

def isa() -> Literal["avx512", "avx2", "scalar"]:
    """The instruction set the CPU kernels use."""

def supported_isas() -> list[str]:
    """Instruction sets this CPU can run, best first; always ends with 'scalar'."""

def set_isa(name: str) -> None:
    """Force the CPU kernels onto one instruction set from supported_isas() (ValueError
    otherwise). The environment variable PYZEN_ISA does the same at import."""

def bf16_paths() -> list[str]:
    """Where autocast's bfloat16 products can run now: 'amx', 'avx512_bf16' (while the ISA is
    'avx512'), and always 'float32' (the float32 kernels on rounded operands)."""

def bf16_path() -> str:
    """The bfloat16 path in use: the one set (initially 'amx' where supported, else 'float32'),
    or 'float32' while the ISA is not 'avx512'."""

def set_bf16_path(name: str) -> None:
    """Force bfloat16 products onto one path from bf16_paths() (ValueError otherwise)."""

def bf16_note() -> str:
    """Why a bfloat16 path this CPU has is not offered (e.g. the kernel refused AMX), or ''."""

def get_num_threads() -> int:
    """Threads the CPU kernels use (1 when built without OpenMP)."""

def set_num_threads(n: int) -> None:
    """Set the CPU kernels' thread count, 1 <= n <= max(256, processors), else ValueError
    (ignored when built without OpenMP)."""

def _buffer_cache_bytes() -> int:
    """Bytes of released large result buffers held for reuse (buffer_cache.h; for tests)."""

def compiler() -> str:
    """Compiler that built this module, e.g. 'GCC 12.2.0'."""

def has_openmp() -> bool:
    """Whether this module was built with OpenMP."""
