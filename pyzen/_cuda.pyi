"""pyzen CUDA kernels, device arrays and device queries. Mirrors cuda/bindings.cpp.

Present only in builds made with a CUDA compiler; imports without a GPU or driver.
Kernel functions write into `out` (allocated by the caller) and validate every argument
before any CUDA call (ValueError / TypeError naming the op); CUDA failures raise
RuntimeError naming the call.
"""
import numpy as np

class Array:
    """A strided view of a refcounted device buffer (strides in elements)."""
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def strides(self) -> tuple[int, ...]: ...
    @property
    def offset(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def ndim(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def buffer_id(self) -> int:
        """Identifies the buffer: views of one buffer share it."""
    @property
    def data_ptr(self) -> int:
        """Device address of element [0, ..., 0] (for handing to other CUDA libraries)."""
    @property
    def buffer_elements(self) -> int: ...
    def is_contiguous(self) -> bool: ...
    def view(self, shape: list[int], strides: list[int], offset: int) -> Array:
        """A view of the same buffer; ValueError if it reaches outside the buffer."""

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

def empty(shape: list[int] | tuple[int, ...], dtype: str) -> Array:
    """A new uninitialised C-contiguous device array (dtype: float32, float64, int64, bool)."""

def from_numpy(array: np.ndarray) -> Array:
    """A new device array holding a copy of a NumPy array (any strides)."""

def to_numpy(array: Array) -> np.ndarray:
    """A new C-contiguous NumPy array holding a copy of a device array."""

def memory_allocated() -> int: ...
def memory_reserved() -> int: ...
def empty_cache() -> None: ...
def synchronize() -> None: ...
def fill(out: Array, value: float | int | bool) -> None: ...
def iota(out: Array, start: float, step: float) -> None: ...
def copy(out: Array, src: Array) -> None: ...
def unary(op: str, out: Array, x: Array) -> None: ...
def binary(op: str, out: Array, a: Array, b: Array) -> None: ...
def where(out: Array, cond: Array, a: Array, b: Array) -> None: ...
def reduce(op: str, out: Array, x: Array, nreduce: int) -> None: ...
def cumulative(op: str, out: Array, x: Array) -> None: ...
def softmax(out: Array, x: Array, log: bool) -> None: ...
def softmax_backward(dx: Array, g: Array, y: Array, log: bool) -> None: ...
def take(out: Array, x: Array, index: Array, axis: int) -> None: ...
def gather(out: Array, x: Array, index: Array, axis: int) -> None: ...
def scatter(out: Array, index: Array, values: Array, axis: int, accumulate: bool) -> None: ...
def random_uniform(out: Array, seed: int, offset: int) -> None: ...
def random_normal(out: Array, seed: int, offset: int) -> None: ...
def random_int(out: Array, low: int, high: int, seed: int, offset: int) -> None: ...
def argsort(out: Array, x: Array) -> None:
    """out (rows, n) int64 = the stable ascending order of each row of x (rows, n), contiguous; NaN
    sorts last, -0.0 as 0.0 (NumPy's kind='stable')."""

def matmul(out: Array, a: Array, b: Array, bf16: bool = False) -> None:
    """out (..., M, N), contiguous, = a @ b (any strides, equal batch shapes). bf16: float32
    operands rounded to bfloat16, products on tensor cores with float32 accumulation (sm_80+)."""

def layer_norm_forward(out: Array, mean: Array, rstd: Array, x: Array, weight: Array | None, bias: Array | None,
                       eps: float) -> None:
    """Layer norm over the last dim of x (contiguous, float): out, and per-row mean and rstd =
    1/sqrt(var + eps); weight and bias (C,) or None."""

def layer_norm_backward(dx: Array, dweight: Array | None, dbias: Array | None, g: Array, x: Array, weight: Array | None,
                        mean: Array, rstd: Array) -> None:
    """Gradients of layer_norm_forward: dx, and dweight / dbias (C,) where given (deterministic order)."""

def adamw_step(params: list[Array], grads: list[Array], exp_avgs: list[Array], exp_avg_sqs: list[Array],
               max_exp_avg_sqs: list[Array] | None, steps: list[float], *, lr: float, beta1: float, beta2: float,
               eps: float, weight_decay: float, decoupled: bool, maximize: bool) -> None:
    """One Adam (decoupled=False) or AdamW step over every param in one launch, in place, with
    the CPU kernel's arithmetic; params of one dtype, all contiguous; steps[i] is param i's
    step count after this step; max_exp_avg_sqs given for amsgrad."""

def cross_entropy_forward(losses: Array, lse: Array, logits: Array, target: Array, ignore_index: int,
                          label_smoothing: float) -> None:
    """Per-row softmax cross-entropy of (N, C) logits (0 where target == ignore_index, nan for
    a target outside [0, C)) and each row's logsumexp; one kernel."""

def cross_entropy_backward(dlogits: Array, g: Array, logits: Array, target: Array, lse: Array, ignore_index: int,
                           label_smoothing: float) -> None:
    """d(sum_i g_i loss_i)/d(logits) for cross_entropy_forward, from its saved lse; one kernel."""

def foreach_sum_squares(out: Array, xs: list[Array]) -> None:
    """out (len(xs),) float64 = each tensor's sum of squares (xs: contiguous, one float dtype); a few
    launches for all of them, deterministic."""

def foreach_mul_(xs: list[Array], scale: Array) -> None:
    """Every tensor of xs (contiguous, one float dtype, no shared memory) times the one element of
    scale, in place."""

def embedding_backward(out: Array, g: Array, index: Array) -> None:
    """out[r] = sum of g[i] over i with index[i] == r (negative indices wrap, out-of-range ones
    are dropped), added in increasing i: deterministic, no atomics."""

def attention_forward(out: Array, lse: Array, q: Array, k: Array, v: Array, causal: bool, scale: float,
                      bf16: bool = False) -> None:
    """Flash attention, float32 arrays: out = softmax(q k^T * scale [causal: key j <= query i]) v for
    q (BH, Tq, D), k, v (BH, Tk, D), D 32, 64 or 128, all contiguous; lse (BH, Tq) saved for the backward.
    bf16: q, k, v rounded to bfloat16, products on tensor cores with float32 accumulation (sm_80+)."""

def attention_backward(dq: Array, dk: Array, dv: Array, g: Array, q: Array, k: Array, v: Array, out: Array, lse: Array,
                       causal: bool, scale: float, bf16: bool = False) -> None:
    """Gradients of attention_forward from its out and lse (deterministic: no atomics); bf16 as for
    the forward, with g rounded too."""
