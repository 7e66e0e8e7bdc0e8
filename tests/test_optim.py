"""pyzen.optim (SGD, Adam, AdamW) and pyzen.amp against NumPy float64 re-implementations of
PyTorch's documented update rules (written out below, never computed by pyzen)."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import pyzen
from pyzen.nn.parameter import Parameter
from conftest import to_np

# ---------------------------------------------------------------- NumPy references
# Gradient field used throughout: g(p) = c * p + b (the gradient of sum(c p^2 / 2 + b p)),
# so each step's gradient depends on the trajectory and an error in one step propagates.


def grad_field(p: np.ndarray, c: np.ndarray, b: np.ndarray) -> np.ndarray:
    return c * p + b


def sgd_reference(p, c, b, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """torch.optim.SGD: the gradient is negated first under maximize, then weight decay is added."""
    p = p.astype(np.float64).copy()
    buf = None
    for _ in range(steps):
        g = grad_field(p, c, b)
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_reference(p, c, b, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False, decoupled=False):
    """torch.optim.Adam / AdamW. AMSGrad keeps the running max of the raw second moment v and
    bias-corrects it with the current step (PyTorch's implementation)."""
    b1, b2 = betas
    p = p.astype(np.float64).copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = grad_field(p, c, b)
        if maximize:
            g = -g
        if weight_decay:
            if decoupled:
                p = p * (1 - lr * weight_decay)
            else:
                g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        if amsgrad:
            vmax = np.maximum(vmax, v)
            v_hat = vmax / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


# ---------------------------------------------------------------- helpers
def make_problem(rng, shapes=((3, 4), (5,)), dtype=np.float64):
    ps = [rng.standard_normal(s).astype(dtype) for s in shapes]
    cs = [rng.uniform(0.5, 2.0, s) for s in shapes]
    bs = [rng.standard_normal(s) for s in shapes]
    return ps, cs, bs


def params_from(ps):
    return [Parameter(pyzen.tensor(p, dtype=pyzen.float64 if p.dtype == np.float64 else pyzen.float32)) for p in ps]


def set_grads(params, cs, bs):
    for p, c, b in zip(params, cs, bs):
        g = grad_field(to_np(p).astype(np.float64), c, b).astype(to_np(p).dtype)
        p.grad = pyzen.tensor(g, dtype=p.dtype)


def run(opt, params, cs, bs, steps):
    for _ in range(steps):
        set_grads(params, cs, bs)
        opt.step()


SGD_CASES = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
    "weight_decay": dict(lr=0.1, weight_decay=0.05),
    "maximize": dict(lr=0.05, momentum=0.5, weight_decay=0.1, maximize=True),
    "everything": dict(lr=0.02, momentum=0.7, weight_decay=0.01, nesterov=True),
}


@pytest.mark.parametrize("case", sorted(SGD_CASES))
def test_sgd_matches_reference(case, rng):
    kw = SGD_CASES[case]
    ps, cs, bs = make_problem(rng)
    params = params_from(ps)
    opt = pyzen.optim.SGD(params, **kw)
    run(opt, params, cs, bs, 6)
    for p, p0, c, b in zip(params, ps, cs, bs):
        np.testing.assert_allclose(to_np(p), sgd_reference(p0, c, b, 6, **kw), rtol=1e-12, atol=1e-12)


ADAM_CASES = {
    "default": dict(lr=0.01),
    "betas_eps": dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6),
    "weight_decay": dict(lr=0.02, weight_decay=0.1),
    "amsgrad": dict(lr=0.05, amsgrad=True),
    "maximize": dict(lr=0.02, maximize=True, weight_decay=0.05),
    "amsgrad_maximize_wd": dict(lr=0.03, amsgrad=True, maximize=True, weight_decay=0.2),
}


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@pytest.mark.parametrize("case", sorted(ADAM_CASES))
def test_adam_matches_reference(case, decoupled, rng):
    kw = dict(ADAM_CASES[case])
    ps, cs, bs = make_problem(rng)
    params = params_from(ps)
    cls = pyzen.optim.AdamW if decoupled else pyzen.optim.Adam
    if decoupled and "weight_decay" not in kw:
        kw_ref = dict(kw, weight_decay=1e-2)  # AdamW's default
    else:
        kw_ref = kw
    opt = cls(params, **kw)
    run(opt, params, cs, bs, 7)
    for p, p0, c, b in zip(params, ps, cs, bs):
        np.testing.assert_allclose(to_np(p), adam_reference(p0, c, b, 7, decoupled=decoupled, **kw_ref), rtol=1e-10, atol=1e-12)
    for p in params:
        assert opt.state[p]["step"] == 7
        assert ("max_exp_avg_sq" in opt.state[p]) == kw.get("amsgrad", False)


def test_adamw_float32(rng):
    ps, cs, bs = make_problem(rng, dtype=np.float32)
    params = params_from(ps)
    opt = pyzen.optim.AdamW(params, lr=0.01, weight_decay=0.1)
    run(opt, params, cs, bs, 5)
    for p, p0, c, b in zip(params, ps, cs, bs):
        assert p.dtype == pyzen.float32 and opt.state[p]["exp_avg"].dtype == pyzen.float32
        np.testing.assert_allclose(to_np(p), adam_reference(p0, c, b, 5, lr=0.01, weight_decay=0.1, decoupled=True), rtol=1e-5, atol=1e-6)


def test_adam_calls_fused_step_once_per_group(rng, monkeypatch):
    calls = []
    original = pyzen.backend.cpu.adamw_step

    def spy(params, grads, *args, **kwargs):
        calls.append((len(params), kwargs["decoupled"], kwargs["lr"]))
        return original(params, grads, *args, **kwargs)

    monkeypatch.setattr(pyzen.backend.cpu, "adamw_step", spy)
    ps, cs, bs = make_problem(rng, shapes=((2,), (3,), (4,), (5,)))
    params = params_from(ps)
    opt = pyzen.optim.AdamW([{"params": params[:3]}, {"params": params[3:], "lr": 0.5}], lr=0.1)
    set_grads(params, cs, bs)
    params[1].grad = None  # skipped
    opt.step()
    assert calls == [(2, True, 0.1), (1, True, 0.5)]
    calls.clear()
    pyzen.optim.Adam(params, lr=0.1).step()
    assert calls == [(3, False, 0.1)]


def test_param_groups_with_different_lr(rng):
    ps, cs, bs = make_problem(rng)
    params = params_from(ps)
    opt = pyzen.optim.SGD([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.5
    run(opt, params, cs, bs, 4)
    np.testing.assert_allclose(to_np(params[0]), sgd_reference(ps[0], cs[0], bs[0], 4, lr=0.1), rtol=1e-12)
    np.testing.assert_allclose(to_np(params[1]), sgd_reference(ps[1], cs[1], bs[1], 4, lr=0.01, momentum=0.5), rtol=1e-12)


def test_changing_lr_between_steps_takes_effect(rng):
    ps, cs, bs = make_problem(rng, shapes=((4,),))
    (p,) = params = params_from(ps)
    opt = pyzen.optim.Adam(params, lr=0.1)
    run(opt, params, cs, bs, 1)
    opt.param_groups[0]["lr"] = 0.0
    before = to_np(p).copy()
    run(opt, params, cs, bs, 1)
    np.testing.assert_array_equal(to_np(p), before)  # lr 0: no change, but the moments advanced
    sgd = pyzen.optim.SGD(params, lr=0.1)
    sgd.param_groups[0]["lr"] = 0.25
    set_grads(params, cs, bs)
    g = to_np(p.grad).copy()
    sgd.step()
    np.testing.assert_allclose(to_np(p), before - 0.25 * g, rtol=1e-12)


def test_zero_grad():
    p = Parameter(pyzen.ones(3))
    opt = pyzen.optim.SGD([p], lr=0.1)
    p.grad = pyzen.full((3,), 2.0)
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g
    np.testing.assert_array_equal(to_np(p.grad), np.zeros(3, np.float32))
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad()  # nothing to do


def test_params_without_grad_are_skipped():
    a, b = Parameter(pyzen.ones(2)), Parameter(pyzen.ones(2))
    for opt in (pyzen.optim.SGD([a, b], lr=0.1, momentum=0.9), pyzen.optim.AdamW([a, b], lr=0.1)):
        a.grad = pyzen.ones(2)
        v = b._version
        opt.step()
        np.testing.assert_array_equal(to_np(b), np.ones(2, np.float32))
        assert b not in opt.state and b._version == v
        assert a in opt.state


def test_step_bumps_version_counter_and_runs_without_grad():
    p = Parameter(pyzen.ones(2))
    y = (p * p).sum()  # saved p for backward
    y.backward(retain_graph=True)
    v = p._version
    for opt in (pyzen.optim.SGD([p], lr=0.1, momentum=0.9), pyzen.optim.Adam([p], lr=0.1)):
        opt.step()
        assert p._version > v and p.grad_fn is None and p.requires_grad
        v = p._version
    with pytest.raises(RuntimeError):  # autograd sees the in-place change
        y.backward()


def test_closure_is_evaluated_with_grad():
    p = Parameter(pyzen.tensor([3.0]))
    opt = pyzen.optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with pyzen.no_grad():
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(9.0)
    assert p.item() == pytest.approx(3.0 - 0.25 * 6.0)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW"])
def test_state_dict_round_trip_gives_identical_steps(cls, rng):
    ps, cs, bs = make_problem(rng)
    kw = {"SGD": dict(lr=0.05, momentum=0.9, nesterov=True), "Adam": dict(lr=0.05, amsgrad=True), "AdamW": dict(lr=0.05)}[cls]
    make = getattr(pyzen.optim, cls)
    params1 = params_from(ps)
    opt1 = make([{"params": params1[:1]}, {"params": params1[1:], "lr": 0.01}], **kw)
    run(opt1, params1, cs, bs, 3)
    sd = opt1.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sorted(sd["state"]) == [0, 1]
    params2 = [Parameter(pyzen.tensor(to_np(p), dtype=p.dtype)) for p in params1]
    opt2 = make([{"params": params2[:1]}, {"params": params2[1:]}], lr=123.0)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.01
    for p1, p2 in zip(params1, params2):
        for key, v in opt1.state[p1].items():
            if isinstance(v, pyzen.Tensor):
                assert opt2.state[p2][key] is not v  # copied, not shared
                np.testing.assert_array_equal(to_np(opt2.state[p2][key]), to_np(v))
    run(opt1, params1, cs, bs, 3)
    run(opt2, params2, cs, bs, 3)
    for p1, p2 in zip(params1, params2):
        np.testing.assert_array_equal(to_np(p1), to_np(p2))


def test_load_state_dict_mismatches_raise(rng):
    a, b = Parameter(pyzen.ones(2)), Parameter(pyzen.ones(3))
    opt = pyzen.optim.Adam([a, b])
    other = pyzen.optim.Adam([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ValueError, match="size"):
        pyzen.optim.Adam([a]).load_state_dict(opt.state_dict())
    a.grad, b.grad = pyzen.ones(2), pyzen.ones(3)
    opt.step()
    swapped = pyzen.optim.Adam([b, a])
    with pytest.raises(ValueError, match="shape"):
        swapped.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError):
        opt.load_state_dict({"state": {}})


def test_state_dict_accepts_tensor_step():
    p = Parameter(pyzen.ones(2))
    opt = pyzen.optim.Adam([p])
    sd = {"state": {0: {"step": pyzen.tensor(4.0), "exp_avg": pyzen.zeros(2), "exp_avg_sq": pyzen.zeros(2)}},
          "param_groups": [dict(opt.state_dict()["param_groups"][0])]}
    opt.load_state_dict(sd)
    assert opt.state[p]["step"] == 4 and isinstance(opt.state[p]["step"], int)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: pyzen.optim.SGD(p, lr=-0.1), "-0.1"),
        (lambda p: pyzen.optim.SGD(p, momentum=-1), "momentum"),
        (lambda p: pyzen.optim.SGD(p, weight_decay=-1e-3), "weight_decay"),
        (lambda p: pyzen.optim.SGD(p, nesterov=True), "Nesterov"),
        (lambda p: pyzen.optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda p: pyzen.optim.Adam(p, lr=-1.0), "learning rate"),
        (lambda p: pyzen.optim.Adam(p, betas=(1.0, 0.999)), "1.0"),
        (lambda p: pyzen.optim.Adam(p, betas=(0.9, -0.5)), "-0.5"),
        (lambda p: pyzen.optim.AdamW(p, eps=-1e-8), "epsilon"),
        (lambda p: pyzen.optim.AdamW(p, weight_decay=-0.01), "-0.01"),
        (lambda p: pyzen.optim.AdamW([{"params": p, "lr": -2.0}]), "-2.0"),
        (lambda p: pyzen.optim.SGD([], lr=0.1), "empty"),
    ],
)
def test_invalid_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(pyzen.ones(2))])


def test_invalid_params():
    p = Parameter(pyzen.ones(2))
    with pytest.raises(TypeError):
        pyzen.optim.SGD(p)  # a bare tensor, not an iterable of tensors
    with pytest.raises(TypeError, match="ordered"):
        pyzen.optim.SGD([{"params": {p}}])
    with pytest.raises(ValueError, match="more than one"):
        pyzen.optim.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="non-leaf"):
        pyzen.optim.SGD([p * 2])
    with pytest.raises(TypeError):
        pyzen.optim.SGD([1.0])


def test_add_param_group_fills_defaults():
    a, b = Parameter(pyzen.ones(2)), Parameter(pyzen.ones(2))
    opt = pyzen.optim.AdamW([a], lr=0.5, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "weight_decay": 0.0})
    g = opt.param_groups[1]
    assert len(g["params"]) == 1 and g["params"][0] is b
    assert g["lr"] == 0.5 and g["betas"] == (0.8, 0.9) and g["weight_decay"] == 0.0
    assert opt.defaults["weight_decay"] == 1e-2


def test_signatures_match_pytorch():
    sig = inspect.signature(pyzen.optim.SGD)
    assert list(sig.parameters) == ["params", "lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"]
    assert sig.parameters["lr"].default == 1e-3 and sig.parameters["nesterov"].default is False
    for cls, wd in ((pyzen.optim.Adam, 0), (pyzen.optim.AdamW, 1e-2)):
        sig = inspect.signature(cls)
        assert list(sig.parameters) == ["params", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"]
        assert sig.parameters["betas"].default == (0.9, 0.999) and sig.parameters["eps"].default == 1e-8
        assert sig.parameters["weight_decay"].default == wd


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_least_squares_converges(name, rng):
    a = rng.standard_normal((32, 3))
    x_true = np.array([1.5, -2.0, 0.5])
    y = a @ x_true
    w = Parameter(pyzen.zeros(3, dtype=pyzen.float64))
    at, yt = pyzen.tensor(a), pyzen.tensor(y)
    opt = {"SGD": lambda: pyzen.optim.SGD([w], lr=0.05, momentum=0.9), "Adam": lambda: pyzen.optim.Adam([w], lr=0.1),
           "AdamW": lambda: pyzen.optim.AdamW([w], lr=0.1, weight_decay=0.0)}[name]()
    for _ in range(300):
        opt.zero_grad()
        loss = ((at @ w - yt) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(to_np(w), x_true, atol=1e-3)


# ---------------------------------------------------------------- pyzen.amp
def test_grad_scaler_is_a_pass_through():
    p = Parameter(pyzen.tensor([1.0]))
    opt = pyzen.optim.SGD([p], lr=0.5)
    scaler = pyzen.amp.GradScaler(enabled=False)
    assert not scaler.is_enabled()
    with pyzen.amp.autocast("cpu", dtype=pyzen.float32):
        loss = (p * p).sum()
    scaled = scaler.scale(loss)
    assert scaled is loss
    scaled.backward()
    scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    assert p.item() == pytest.approx(0.0)
    assert scaler.state_dict() == {}
    scaler.load_state_dict({})
    with pytest.raises(NotImplementedError, match="float16"):
        pyzen.amp.GradScaler(enabled=True)

    @pyzen.amp.autocast("cpu")
    def f(x):
        return x + 1

    assert f(2) == 3
