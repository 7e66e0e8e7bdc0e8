"""Bad input answers with a clear Python exception of the right type naming the op."""
from __future__ import annotations

import re

import pytest

import pyzen


def x2d():
    return pyzen.ones(2, 3)


# ------------------------------------------------------------------ shapes
def test_matmul_shape_mismatch_message():
    with pytest.raises(RuntimeError, match=re.escape("matmul: shapes (3, 4) and (5, 6) cannot be multiplied (4 != 5)")):
        pyzen.matmul(pyzen.ones(3, 4), pyzen.ones(5, 6))
    with pytest.raises(RuntimeError, match=r"^matmul"):
        pyzen.ones(3, 4) @ pyzen.ones(5, 6)
    with pytest.raises(RuntimeError, match=r"^matmul"):
        pyzen.ones(3) @ pyzen.ones(4)
    with pytest.raises(RuntimeError, match=r"^matmul"):
        pyzen.ones(2, 3, 4) @ pyzen.ones(3, 4, 5)  # batch dims 2 and 3 do not broadcast


def test_matmul_zero_dim_rejected():
    with pytest.raises(RuntimeError, match="matmul"):
        pyzen.matmul(pyzen.tensor(1.0), pyzen.ones(2))


@pytest.mark.parametrize("op", [
    lambda a, b: pyzen.add(a, b), lambda a, b: a + b,
])
def test_add_broadcast_failure_names_op_and_shapes(op):
    with pytest.raises(RuntimeError) as info:
        op(pyzen.ones(2, 3), pyzen.ones(4))
    msg = str(info.value)
    assert "add" in msg and "(2, 3)" in msg and "(4,)" in msg, msg


@pytest.mark.parametrize("name", ["sub", "mul", "div", "maximum", "eq", "lt"])
def test_binary_broadcast_failure_names_op(name):
    with pytest.raises(RuntimeError, match=name):
        getattr(pyzen, name)(pyzen.ones(2, 3), pyzen.ones(2, 4))


def test_inplace_broadcast_cannot_grow_self():
    with pytest.raises(RuntimeError, match="add"):
        pyzen.ones(3).add_(pyzen.ones(2, 3))


@pytest.mark.parametrize("call,name", [
    (lambda: pyzen.reshape(x2d(), (4, 2)), "reshape"),
    (lambda: x2d().view(5), "view"),
    (lambda: x2d().T.view(6), "view"),
    (lambda: pyzen.reshape(x2d(), (-1, -1)), "reshape"),
    (lambda: x2d().expand(4, 3), "expand"),
    (lambda: x2d().expand(3), "expand"),
    (lambda: pyzen.cat([pyzen.ones(2, 3), pyzen.ones(2, 4)], dim=0), "cat"),
    (lambda: pyzen.stack([pyzen.ones(2, 3), pyzen.ones(3, 2)]), "stack"),
    (lambda: pyzen.where(pyzen.ones(2, dtype=pyzen.bool), pyzen.ones(3), pyzen.ones(2)), "where"),
    (lambda: pyzen.masked_fill(x2d(), pyzen.ones(4, dtype=pyzen.bool), 0.0), "masked_fill"),
    (lambda: pyzen.gather(x2d(), 1, pyzen.zeros(2, dtype=pyzen.int64)), "gather"),
    (lambda: pyzen.split(x2d(), [1, 1], dim=1), "split"),
    (lambda: x2d().repeat(2), "repeat"),
    (lambda: x2d().copy_(pyzen.ones(4)), "copy_"),
])
def test_shape_errors(call, name):
    with pytest.raises(RuntimeError, match=name):
        call()


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("call,name", [
    (lambda: pyzen.index_select(x2d(), 0, pyzen.tensor([0.0])), "index_select"),
    (lambda: pyzen.gather(x2d(), 1, pyzen.zeros(2, 1)), "gather"),
    (lambda: pyzen.masked_fill(x2d(), pyzen.ones(2, 3), 0.0), "masked_fill"),
    (lambda: pyzen.embedding(pyzen.tensor([0.0, 1.0]), pyzen.ones(3, 2)), "embedding"),
    (lambda: pyzen.where(pyzen.ones(2), pyzen.ones(2), pyzen.ones(2)), "where"),
    (lambda: x2d().masked_fill_(pyzen.ones(2, 3), 1.0), "masked_fill"),
])
def test_wrong_dtype_is_type_error(call, name):
    with pytest.raises(TypeError, match=name):
        call()


def test_float_tensor_as_index_is_error():
    with pytest.raises((TypeError, IndexError)):
        x2d()[pyzen.tensor([0.0, 1.0])]


def test_requires_grad_on_integer_tensor():
    with pytest.raises((RuntimeError, TypeError), match="(?i)floating point"):
        pyzen.tensor([1, 2], requires_grad=True)
    with pytest.raises((RuntimeError, TypeError), match="(?i)floating point"):
        pyzen.arange(3).requires_grad_()
    with pytest.raises((RuntimeError, TypeError), match="(?i)floating point"):
        pyzen.zeros(2, dtype=pyzen.int64, requires_grad=True)


def test_logical_operators_on_float_are_type_errors():
    with pytest.raises((TypeError, RuntimeError)):
        pyzen.ones(2) & pyzen.ones(2)
    with pytest.raises((TypeError, RuntimeError)):
        ~pyzen.ones(2)


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("name", ["zeros", "ones", "empty", "rand", "randn"])
def test_negative_size_is_value_error(name):
    fn = getattr(pyzen, name)
    with pytest.raises(ValueError, match=rf"{name}.*-1|-1.*{name}"):
        fn(2, -1)
    with pytest.raises(ValueError, match=name):
        fn((-3,))


def test_negative_size_full_and_randint():
    with pytest.raises(ValueError, match=r"full.*-2|-2.*full"):
        pyzen.full((-2, 2), 1.0)
    with pytest.raises((ValueError, RuntimeError), match="randint"):
        pyzen.randint(0, 5, (-1,))
    with pytest.raises((ValueError, RuntimeError), match="randperm"):
        pyzen.randperm(-1)


def test_non_finite_scalars():
    with pytest.raises(ValueError, match="linspace"):
        pyzen.linspace(0, float("nan"), 5)
    with pytest.raises(ValueError, match="linspace"):
        pyzen.linspace(float("-inf"), 1, 5)
    with pytest.raises((ValueError, RuntimeError), match="linspace"):
        pyzen.linspace(0, 1, -1)
    with pytest.raises((ValueError, RuntimeError), match="arange"):
        pyzen.arange(0, 5, 0)
    with pytest.raises((ValueError, RuntimeError), match="arange"):
        pyzen.arange(0, float("inf"))
    full = pyzen.full((2,), float("nan"))  # NaN fill is allowed
    assert full.shape == (2,)


@pytest.mark.parametrize("kwargs", [dict(std=-1.0), dict(std=float("nan")), dict(mean=0.0, std=-0.5)])
def test_normal_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="normal_"):
        pyzen.zeros(3).normal_(**kwargs)


def test_uniform_bad_parameters():
    with pytest.raises((ValueError, RuntimeError), match="uniform_"):
        pyzen.zeros(3).uniform_(1.0, float("nan"))
    with pytest.raises((ValueError, RuntimeError), match="uniform_"):
        pyzen.zeros(3).uniform_(2.0, 1.0)


def test_randint_bad_range():
    with pytest.raises((ValueError, RuntimeError), match="randint"):
        pyzen.randint(5, 5, (3,))


# ------------------------------------------------------------------ dims
@pytest.mark.parametrize("call,name", [
    (lambda x: pyzen.sum(x, dim=3), "sum"),
    (lambda x: pyzen.mean(x, dim=-3), "mean"),
    (lambda x: pyzen.var(x, dim=2), "var"),
    (lambda x: pyzen.std(x, dim=2), "std"),
    (lambda x: pyzen.max(x, dim=2), "max"),
    (lambda x: pyzen.min(x, dim=2), "min"),
    (lambda x: pyzen.argmax(x, dim=2), "argmax"),
    (lambda x: pyzen.argmin(x, dim=-3), "argmin"),
    (lambda x: pyzen.prod(x, dim=2), "prod"),
    (lambda x: pyzen.logsumexp(x, dim=2), "logsumexp"),
    (lambda x: pyzen.softmax(x, dim=2), "softmax"),
    (lambda x: pyzen.log_softmax(x, dim=-3), "log_softmax"),
    (lambda x: pyzen.cumsum(x, dim=2), "cumsum"),
    (lambda x: pyzen.transpose(x, 0, 2), "transpose"),
    (lambda x: pyzen.permute(x, (2, 0)), "permute"),
    (lambda x: pyzen.squeeze(x, 2), "squeeze"),
    (lambda x: pyzen.unsqueeze(x, 3), "unsqueeze"),
    (lambda x: pyzen.unsqueeze(x, -4), "unsqueeze"),
    (lambda x: pyzen.flatten(x, 0, 2), "flatten"),
    (lambda x: pyzen.cat([x, x], dim=2), "cat"),
    (lambda x: pyzen.stack([x, x], dim=4), "stack"),
    (lambda x: pyzen.split(x, 1, dim=2), "split"),
    (lambda x: pyzen.chunk(x, 2, dim=2), "chunk"),
    (lambda x: pyzen.flip(x, (2,)), "flip"),
    (lambda x: pyzen.index_select(x, 2, pyzen.tensor([0])), "index_select"),
    (lambda x: pyzen.gather(x, 2, pyzen.zeros(2, 3, dtype=pyzen.int64)), "gather"),
    (lambda x: x.size(2), "size"),
])
def test_dim_out_of_range_is_index_error(call, name):
    with pytest.raises(IndexError, match=name) as info:
        call(x2d())
    assert "range" in str(info.value)


def test_dim_error_message_style():
    with pytest.raises(IndexError, match=r"sum.*dim 3 out of range.*2-d"):
        pyzen.sum(x2d(), dim=3)


def test_cat_empty_list():
    with pytest.raises((RuntimeError, ValueError), match="cat"):
        pyzen.cat([], dim=0)


def test_permute_must_be_a_permutation():
    with pytest.raises((RuntimeError, ValueError, IndexError), match="permute"):
        pyzen.permute(x2d(), (0, 0))


# ------------------------------------------------------------------ indices
@pytest.mark.parametrize("call,name", [
    (lambda: pyzen.gather(x2d(), 1, pyzen.tensor([[0, 3], [1, 1]])), "gather"),
    (lambda: pyzen.gather(x2d(), 1, pyzen.tensor([[0, -1], [1, 1]])), "gather"),
    (lambda: pyzen.index_select(x2d(), 1, pyzen.tensor([0, 5])), "index_select"),
    (lambda: pyzen.index_select(x2d(), 0, pyzen.tensor([-1])), "index_select"),
    (lambda: pyzen.embedding(pyzen.tensor([0, 10]), pyzen.ones(5, 2)), "embedding"),
    (lambda: pyzen.embedding(pyzen.tensor([-1]), pyzen.ones(5, 2)), "embedding"),
])
def test_index_out_of_range_names_op(call, name):
    with pytest.raises(IndexError, match=name):
        call()


@pytest.mark.parametrize("key", [5, -4, (0, 3), (slice(None), 7), [0, 7], "tensor"])
def test_getitem_out_of_range(key):
    x = pyzen.ones(3, 3)
    if key == "tensor":
        key = pyzen.tensor([1, 9])
    with pytest.raises(IndexError):
        x[key]


def test_setitem_out_of_range():
    x = pyzen.ones(3)
    with pytest.raises(IndexError):
        x[3] = 0.0


def test_too_many_indices():
    with pytest.raises(IndexError):
        pyzen.ones(2, 2)[0, 0, 0]


def test_bool_mask_shape_mismatch():
    with pytest.raises(IndexError):
        pyzen.ones(3, 2)[pyzen.tensor([True, False])]


# ------------------------------------------------------------------ devices
def test_to_cuda_raises_when_unavailable():
    if pyzen.cuda.is_available():
        pytest.skip("CUDA-only: this machine has CUDA")
    with pytest.raises(RuntimeError, match="(?i)cuda") as info:
        pyzen.ones(2).to("cuda")
    reason = pyzen.cuda.unavailable_reason()
    assert reason and reason in str(info.value)


def test_unknown_device():
    with pytest.raises((RuntimeError, ValueError)):
        pyzen.ones(2).to("tpu")
