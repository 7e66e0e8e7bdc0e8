"""nn.Module: registration, traversal, state_dict, modes, conversions, printing, copying.

Expected behaviour is PyTorch's documented nn.Module semantics; every expected value is
written here (names, orders) or computed with NumPy float64, never with pyzen itself.
"""
from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import pyzen
import pyzen.nn as nn
from conftest import assert_np_close, to_np

F64 = pyzen.float64


def np_param(a) -> nn.Parameter:
    return nn.Parameter(pyzen.tensor(np.asarray(a, dtype=np.float64)))


class Net(nn.Module):
    """Own parameter first, then two children and two buffers (one non-persistent)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(pyzen.ones(3))
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)
        self.register_buffer("running", pyzen.zeros(2))
        self.register_buffer("scratch", pyzen.zeros(5), persistent=False)
        self.not_a_param = pyzen.ones(2)  # a plain tensor attribute: not registered

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x * self.scale))) + self.running


class Tied(nn.Module):
    """Two Linear layers sharing one weight Parameter (like tied input/output embeddings)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 3, bias=False)
        self.dec = nn.Linear(3, 3)
        self.dec.weight = self.enc.weight

    def forward(self, x):
        return self.dec(self.enc(x))


# ------------------------------------------------------------------ registration
def test_attribute_assignment_registers_parameters_modules_and_buffers():
    net = Net()
    assert list(net._parameters) == ["scale"]
    assert list(net._modules) == ["fc1", "act", "fc2"]
    assert list(net._buffers) == ["running", "scratch"]
    assert "not_a_param" not in net._parameters and "not_a_param" not in net._buffers
    assert isinstance(net.scale, nn.Parameter) and net.scale.requires_grad
    assert net.fc1 is net._modules["fc1"]
    assert net.running is net._buffers["running"]
    assert not net.running.requires_grad


def test_named_parameters_order_and_names():
    names = [n for n, _ in Net().named_parameters()]
    assert names == ["scale", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_parameters_match_named_parameters_and_shapes():
    net = Net()
    params = list(net.parameters())
    named = list(net.named_parameters())
    assert len(params) == 5
    assert all(p is q for p, (_, q) in zip(params, named))
    assert [tuple(p.shape) for p in params] == [(3,), (4, 3), (4,), (2, 4), (2,)]
    assert all(isinstance(p, nn.Parameter) for p in params)


def test_parameters_recurse_false_and_prefix():
    net = Net()
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert len(list(net.parameters(recurse=False))) == 1
    assert [n for n, _ in net.fc1.named_parameters(prefix="model.fc1")] == ["model.fc1.weight", "model.fc1.bias"]


def test_tied_parameter_listed_once_but_state_dict_has_both_names():
    m = Tied()
    assert m.enc.weight is m.dec.weight
    assert [n for n, _ in m.named_parameters()] == ["enc.weight", "dec.bias"]
    assert len(list(m.parameters())) == 2
    sd = m.state_dict()
    assert sorted(sd) == ["dec.bias", "dec.weight", "enc.weight"]  # order: see test_reassigning_a_parameter_keeps_its_registration_order
    assert_np_close(to_np(sd["enc.weight"]), to_np(sd["dec.weight"]), 0, 0)


def test_named_parameters_remove_duplicate_false_lists_tied_twice():
    names = [n for n, _ in Tied().named_parameters(remove_duplicate=False)]
    assert sorted(names) == ["dec.bias", "dec.weight", "enc.weight"]


def test_tied_parameter_accumulates_gradient_from_both_uses():
    m = Tied()
    m.double()
    w = to_np(m.enc.weight).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3))
    m(pyzen.tensor(x)).sum().backward()
    # y = (x W^T) W^T + b; d(sum y)/dW = 1^T (x W^T) [from dec] + (1 W)^T x [from enc]
    h = x @ w.T
    g_out = np.ones((5, 3))
    expected = g_out.T @ h + (g_out @ w).T @ x
    assert_np_close(to_np(m.enc.weight.grad), expected, 1e-10, 1e-12)


def test_none_parameter_is_skipped():
    lin = nn.Linear(3, 2, bias=False)
    assert lin.bias is None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    assert list(lin.state_dict()) == ["weight"]


def test_assigning_a_plain_tensor_over_a_parameter_raises_typeerror():
    lin = nn.Linear(3, 2)
    with pytest.raises(TypeError):
        lin.weight = pyzen.zeros(2, 3)
    lin.bias = None  # None is allowed
    assert lin.bias is None and "bias" not in dict(lin.named_parameters())


def test_assigning_a_new_parameter_replaces_the_old():
    lin = nn.Linear(3, 2)
    new = np_param(np.zeros((2, 3)))
    lin.weight = new
    assert lin.weight is new
    assert dict(lin.named_parameters())["weight"] is new


def test_reassigning_a_parameter_keeps_its_registration_order():
    # PyTorch overwrites the existing _parameters entry in place, so key order is unchanged
    lin = nn.Linear(3, 2)
    lin.weight = np_param(np.zeros((2, 3)))
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert list(lin.state_dict()) == ["weight", "bias"]
    assert list(Tied().state_dict()) == ["enc.weight", "dec.weight", "dec.bias"]  # weight tying by assignment


def test_register_parameter_and_add_module():
    m = nn.Module()
    p = np_param([1.0, 2.0])
    m.register_parameter("p", p)
    m.add_module("child", nn.Linear(2, 2))
    assert m.p is p
    assert [n for n, _ in m.named_parameters()] == ["p", "child.weight", "child.bias"]
    with pytest.raises(TypeError):
        m.register_parameter("q", pyzen.ones(2))
    with pytest.raises(TypeError):
        m.add_module("bad", 3)


def test_delattr_unregisters():
    net = Net()
    del net.fc2
    assert "fc2" not in dict(net.named_children())
    assert not hasattr(net, "fc2")
    del net.scale
    assert [n for n, _ in net.named_parameters()] == ["fc1.weight", "fc1.bias"]


def test_missing_attribute_raises_attributeerror():
    with pytest.raises(AttributeError, match="nope"):
        nn.Linear(2, 2).nope


def test_assigning_parameter_before_super_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pyzen.ones(2))
            super().__init__()

    with pytest.raises(AttributeError):
        Bad()


def test_assigning_module_before_super_init_raises():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError):
        Bad()


def test_base_module_forward_is_not_implemented():
    with pytest.raises(NotImplementedError):
        nn.Module()(pyzen.ones(2))


def test_parameter_basics():
    p = nn.Parameter(pyzen.ones(2, 3))
    assert isinstance(p, pyzen.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert not nn.Parameter(pyzen.ones(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:")


# ------------------------------------------------------------------ buffers
def test_buffers_and_persistence():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]
    assert len(list(net.buffers())) == 2
    sd = net.state_dict()
    assert "running" in sd and "scratch" not in sd


def test_buffer_reassignment_stays_a_buffer():
    net = Net()
    net.running = pyzen.ones(2)
    assert "running" in net._buffers and "running" not in net.__dict__
    assert_np_close(to_np(net.state_dict()["running"]), np.ones(2), 0, 0)
    with pytest.raises(TypeError):
        net.running = 3.0


def test_register_buffer_rejects_dotted_names_and_non_tensors():
    m = nn.Module()
    with pytest.raises(KeyError):
        m.register_buffer("a.b", pyzen.ones(1))
    with pytest.raises(TypeError):
        m.register_buffer("a", [1.0])


def test_nested_buffers_are_named_with_prefix():
    outer = nn.Sequential(Net())
    assert [n for n, _ in outer.named_buffers()] == ["0.running", "0.scratch"]
    assert [k for k in outer.state_dict() if "running" in k or "scratch" in k] == ["0.running"]


# ------------------------------------------------------------------ traversal
def test_children_modules_named_modules():
    net = Net()
    assert list(net.children()) == [net.fc1, net.act, net.fc2]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "fc2"]
    assert list(net.modules()) == [net, net.fc1, net.act, net.fc2]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "act", "fc2"]


def test_named_modules_is_preorder_and_deduplicated():
    shared = nn.Linear(2, 2)
    inner = nn.Sequential(shared, nn.ReLU())
    outer = nn.Sequential(inner, shared, nn.Tanh())
    names = [n for n, _ in outer.named_modules()]
    assert names == ["", "0", "0.0", "0.1", "2"]
    mods = list(outer.modules())
    assert len(mods) == 5 and sum(m is shared for m in mods) == 1
    assert len(list(outer.children())) == 3
    # parameters of the shared layer once; state_dict under both names
    assert [n for n, _ in outer.named_parameters()] == ["0.0.weight", "0.0.bias"]
    assert list(outer.state_dict()) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]


def test_get_submodule():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3)), nn.ReLU())
    assert model.get_submodule("0.0") is model[0][0]
    assert model.get_submodule("") is model
    with pytest.raises(AttributeError):
        model.get_submodule("0.5")


# ------------------------------------------------------------------ state_dict
def test_sequential_state_dict_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.LayerNorm(2))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]


def test_module_own_params_and_buffers_come_before_children():
    net = Net()
    assert list(net.state_dict()) == ["scale", "running", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]


def test_transformer_encoder_layer_state_dict_keys():
    layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
    expected = [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
        "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias",
    ]
    sd = layer.state_dict()
    assert list(sd) == expected
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert shapes["self_attn.in_proj_weight"] == (24, 8)
    assert shapes["self_attn.in_proj_bias"] == (24,)
    assert shapes["self_attn.out_proj.weight"] == (8, 8)
    assert shapes["linear1.weight"] == (16, 8) and shapes["linear2.weight"] == (8, 16)
    assert shapes["norm1.weight"] == (8,)


def test_multihead_attention_state_dict_keys_without_bias():
    mha = nn.MultiheadAttention(8, 2, bias=False)
    assert list(mha.state_dict()) == ["in_proj_weight", "out_proj.weight"]


def test_state_dict_values_are_detached_and_share_storage():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict()
    assert not sd["weight"].requires_grad
    with pyzen.no_grad():
        lin.weight.fill_(2.5)
    assert_np_close(to_np(sd["weight"]), np.full((2, 3), 2.5), 0, 0)


def test_state_dict_prefix():
    model = nn.Sequential(nn.Linear(2, 1))
    assert list(model.state_dict(prefix="model.")) == ["model.0.weight", "model.0.bias"]


def test_state_dict_keep_vars_returns_the_parameters():
    lin = nn.Linear(3, 2)
    sd = lin.state_dict(keep_vars=True)
    assert sd["weight"] is lin.weight


def _make_mlp():
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3), nn.LayerNorm(3))


def test_load_state_dict_round_trip_gives_identical_outputs():
    pyzen.manual_seed(1)
    a = _make_mlp()
    pyzen.manual_seed(2)
    b = _make_mlp()
    x = pyzen.tensor(np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32))
    assert not np.array_equal(to_np(a(x)), to_np(b(x)))
    result = b.load_state_dict(a.state_dict())
    assert list(result.missing_keys) == [] and list(result.unexpected_keys) == []
    np.testing.assert_array_equal(to_np(a(x)), to_np(b(x)))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and pa is not pb
        np.testing.assert_array_equal(to_np(pa), to_np(pb))


def test_load_state_dict_copies_values_and_keeps_parameter_objects():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    w_before = b.weight
    sd = {k: v.clone() for k, v in a.state_dict().items()}
    b.load_state_dict(sd)
    assert b.weight is w_before and isinstance(b.weight, nn.Parameter) and b.weight.requires_grad
    expected = to_np(sd["weight"]).copy()
    with pyzen.no_grad():
        sd["weight"].fill_(7.0)  # the module holds a copy, not the dict's tensor
    np.testing.assert_array_equal(to_np(b.weight), expected)


def test_load_state_dict_loads_buffers():
    a, b = Net(), Net()
    with pyzen.no_grad():
        a.running.fill_(3.0)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(to_np(b.running), np.full(2, 3.0))


def test_load_state_dict_strict_missing_key_raises_and_names_it():
    sd = nn.Linear(3, 2).state_dict()
    del sd["bias"]
    with pytest.raises(RuntimeError, match="bias"):
        nn.Linear(3, 2).load_state_dict(sd)


def test_load_state_dict_strict_unexpected_key_raises_and_names_it():
    sd = nn.Linear(3, 2).state_dict()
    sd["extra.weight"] = pyzen.ones(1)
    with pytest.raises(RuntimeError, match="extra.weight"):
        nn.Linear(3, 2).load_state_dict(sd)


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    sd = nn.Linear(3, 2).state_dict()
    sd["weight"] = pyzen.ones(5, 3)
    target = nn.Linear(3, 2)
    before = to_np(target.weight).copy()
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="weight"):
            target.load_state_dict(sd, strict=strict)
    np.testing.assert_array_equal(to_np(target.weight), before)


def test_load_state_dict_rejects_non_tensor_values():
    sd = dict(nn.Linear(2, 2).state_dict())
    sd["weight"] = [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(RuntimeError, match="weight"):
        nn.Linear(2, 2).load_state_dict(sd)


def test_load_state_dict_non_strict_returns_missing_and_unexpected():
    src = nn.Sequential(nn.Linear(3, 2))
    sd = src.state_dict()
    del sd["0.bias"]
    sd["1.weight"] = pyzen.ones(2)
    dst = nn.Sequential(nn.Linear(3, 2))
    bias_before = to_np(dst[0].bias).copy()
    result = dst.load_state_dict(sd, strict=False)
    missing, unexpected = result
    assert list(missing) == ["0.bias"] and list(unexpected) == ["1.weight"]
    assert result.missing_keys == missing and result.unexpected_keys == unexpected
    np.testing.assert_array_equal(to_np(dst[0].weight), to_np(src[0].weight))
    np.testing.assert_array_equal(to_np(dst[0].bias), bias_before)


def test_load_state_dict_into_tied_module():
    src, dst = Tied(), Tied()
    dst.load_state_dict(src.state_dict())
    assert dst.enc.weight is dst.dec.weight
    np.testing.assert_array_equal(to_np(dst.enc.weight), to_np(src.enc.weight))


# ------------------------------------------------------------------ modes
def test_train_eval_propagate_and_return_self():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5), nn.ReLU()))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())
    model.train(False)
    assert not any(m.training for m in model.modules())


def test_requires_grad_false_freezes_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    x = pyzen.randn(5, 3, requires_grad=True)
    model(x).sum().backward()
    assert all(p.grad is None for p in model.parameters())
    assert x.grad is not None  # gradients still flow through to the input


def test_partial_freeze_only_trains_the_rest():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    model[0].requires_grad_(False)
    model(pyzen.randn(2, 3)).sum().backward()
    assert model[0].weight.grad is None and model[0].bias.grad is None
    assert model[1].weight.grad is not None and model[1].bias.grad is not None
    model.requires_grad_(True)
    assert all(p.requires_grad for p in model.parameters())


def test_modifying_a_parameter_in_place_before_backward_raises():
    """An optimizer step between forward and backward would give wrong gradients: PyTorch raises."""
    lin = nn.Linear(3, 2)
    out = lin(pyzen.randn(4, 3, requires_grad=True)).sum()
    with pyzen.no_grad():
        lin.weight.add_(1.0)
    with pytest.raises(RuntimeError, match="inplace"):
        out.backward()


def test_apply_visits_every_module_children_first():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]


def test_apply_can_reinitialise():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            nn.init.zeros_(m.bias)

    model.apply(init)
    np.testing.assert_array_equal(to_np(model[0].weight), np.full((4, 3), 0.5))
    np.testing.assert_array_equal(to_np(model[2].bias), np.zeros(2))


def _with_grads():
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    model(pyzen.randn(4, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    return model


def test_zero_grad_set_to_none():
    model = _with_grads()
    model.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_default_sets_to_none():
    model = _with_grads()
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_set_to_zero():
    model = _with_grads()
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad is not None and tuple(p.grad.shape) == tuple(p.shape)
        np.testing.assert_array_equal(to_np(p.grad), np.zeros(tuple(p.shape)))


def test_gradients_accumulate_until_zeroed():
    lin = nn.Linear(2, 1)
    x = pyzen.tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    lin(x).sum().backward()
    lin(x).sum().backward()
    assert_np_close(to_np(lin.weight.grad), [[2.0, 4.0]], 1e-6, 1e-6)
    assert_np_close(to_np(lin.bias.grad), [2.0], 1e-6, 1e-6)


# ------------------------------------------------------------------ conversions
def test_to_float64_casts_parameters_and_float_buffers_in_place():
    net = Net()
    net.register_buffer("count", pyzen.tensor(np.array([1, 2], dtype=np.int64)))
    params_before = list(net.parameters())
    values_before = [to_np(p).astype(np.float64) for p in params_before]
    assert net.to(pyzen.float64) is net
    params_after = list(net.parameters())
    assert all(a is b for a, b in zip(params_before, params_after))
    for p, v in zip(params_after, values_before):
        assert p.dtype == F64 and isinstance(p, nn.Parameter) and p.requires_grad
        np.testing.assert_array_equal(to_np(p), v)
    assert net.running.dtype == F64 and net.scratch.dtype == F64
    assert net.count.dtype == pyzen.int64
    out = net(pyzen.randn(2, 3, dtype=F64))
    assert out.dtype == F64


def test_to_dtype_keyword_and_double_float():
    lin = nn.Linear(2, 2)
    lin.to(dtype=pyzen.float64)
    assert lin.weight.dtype == F64
    lin.float()
    assert lin.weight.dtype == pyzen.float32 and lin.bias.dtype == pyzen.float32
    lin.double()
    assert lin.bias.dtype == F64


def test_to_float64_casts_existing_gradients():
    lin = nn.Linear(3, 2)
    lin(pyzen.randn(4, 3)).sum().backward()
    grad_before = to_np(lin.weight.grad).astype(np.float64)
    lin.to(pyzen.float64)
    assert lin.weight.grad.dtype == F64 and lin.bias.grad.dtype == F64
    np.testing.assert_array_equal(to_np(lin.weight.grad), grad_before)


def test_training_after_to_float64_updates_the_registered_parameter():
    lin = nn.Linear(3, 1).double()
    lin(pyzen.randn(4, 3, dtype=F64)).sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.dtype == F64


# ------------------------------------------------------------------ printing
def test_repr_linear():
    assert repr(nn.Linear(4, 8)) == "Linear(in_features=4, out_features=8, bias=True)"
    assert repr(nn.Linear(4, 8, bias=False)) == "Linear(in_features=4, out_features=8, bias=False)"


def test_repr_nested():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Sequential(nn.Dropout(0.25)))
    text = repr(model)
    assert text.startswith("Sequential(")
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in text
    assert "(1): ReLU()" in text
    assert "(2): Sequential(" in text
    assert "Dropout(p=0.25" in text
    assert text.endswith(")")


def test_repr_custom_module_lists_children_by_attribute_name():
    text = repr(Net())
    assert text.startswith("Net(")
    for piece in ("(fc1): Linear(in_features=3, out_features=4, bias=True)", "(act): ReLU()", "(fc2): Linear(in_features=4, out_features=2, bias=True)"):
        assert piece in text


# ------------------------------------------------------------------ copying
def test_deepcopy_is_equal_and_independent():
    model = _make_mlp()
    clone = copy.deepcopy(model)
    x = pyzen.randn(3, 4)
    np.testing.assert_array_equal(to_np(model(x)), to_np(clone(x)))
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    for p, q in zip(model.parameters(), clone.parameters()):
        assert p is not q and isinstance(q, nn.Parameter) and q.requires_grad
    before = to_np(model[0].weight).copy()
    with pyzen.no_grad():
        clone[0].weight.fill_(0.0)
    np.testing.assert_array_equal(to_np(model[0].weight), before)
    clone(x).sum().backward()
    assert model[0].weight.grad is None and clone[0].weight.grad is not None


def test_deepcopy_copies_gradients():
    lin = nn.Linear(3, 2)
    lin(pyzen.randn(4, 3)).sum().backward()
    clone = copy.deepcopy(lin)
    assert clone.weight.grad is not None and clone.weight.grad is not lin.weight.grad
    np.testing.assert_array_equal(to_np(clone.weight.grad), to_np(lin.weight.grad))


def test_pickle_round_trip():
    model = _make_mlp()
    clone = pickle.loads(pickle.dumps(model))
    x = pyzen.randn(2, 4)
    np.testing.assert_array_equal(to_np(model(x)), to_np(clone(x)))
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in model.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in clone.parameters())


def test_deepcopy_preserves_tying():
    clone = copy.deepcopy(Tied())
    assert clone.enc.weight is clone.dec.weight
    assert len(list(clone.parameters())) == 2


def test_deepcopy_keeps_buffers_and_mode():
    net = Net().eval()
    clone = copy.deepcopy(net)
    assert [n for n, _ in clone.named_buffers()] == ["running", "scratch"]
    assert "scratch" not in clone.state_dict()
    assert not clone.training and not clone.fc1.training


# ------------------------------------------------------------------ containers as modules
def test_sequential_from_ordered_dict_uses_names():
    model = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]
    assert model.fc is model[0]


def test_module_list_and_dict_register_their_items():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2, bias=False)])
            self.heads = nn.ModuleDict({"a": nn.Linear(2, 1), "b": nn.LayerNorm(2)})

    h = Holder()
    assert list(h.state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight",
        "heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias",
    ]
    assert len(list(h.parameters())) == 7
