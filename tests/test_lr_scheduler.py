"""pyzen.optim.lr_scheduler against closed forms and hand-computed lists."""
from __future__ import annotations

import math

import pytest

import pyzen
from pyzen.nn.parameter import Parameter
from pyzen.optim import lr_scheduler as S


def make_opt(lr=1.0, groups=1):
    if groups == 1:
        return pyzen.optim.SGD([Parameter(pyzen.ones(2))], lr=lr)
    return pyzen.optim.SGD([{"params": [Parameter(pyzen.ones(2))], "lr": lr * (i + 1)} for i in range(groups)], lr=lr)


def trajectory(opt, sched, n):
    """[lr at epoch 0, lr at epoch 1, ...]: the rate each optimizer step would use."""
    out = []
    for _ in range(n):
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_lr():
    opt = make_opt(0.1)
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    assert trajectory(opt, sched, 10) == pytest.approx([0.1 * 0.5 ** (t // 3) for t in range(10)], rel=1e-14)
    assert sched.last_epoch == 10


def test_multistep_exponential_constant():
    opt = make_opt(2.0)
    got = trajectory(opt, S.MultiStepLR(opt, milestones=[4, 2], gamma=0.1), 6)
    assert got == pytest.approx([2.0, 2.0, 0.2, 0.2, 0.02, 0.02], rel=1e-12)
    opt = make_opt(2.0)
    assert trajectory(opt, S.ExponentialLR(opt, gamma=0.9), 4) == pytest.approx([2.0, 1.8, 1.62, 1.458], rel=1e-12)
    opt = make_opt(3.0)
    assert trajectory(opt, S.ConstantLR(opt, factor=0.5, total_iters=2), 4) == pytest.approx([1.5, 1.5, 3.0, 3.0], rel=1e-12)


def test_linear_lr_hand_computed():
    opt = make_opt(0.4)
    got = trajectory(opt, S.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=4), 7)
    assert got == pytest.approx([0.1, 0.175, 0.25, 0.325, 0.4, 0.4, 0.4], rel=1e-12)


def test_cosine_annealing_closed_form():
    base, eta_min, t_max = 0.1, 0.001, 10
    opt = make_opt(base)
    got = trajectory(opt, S.CosineAnnealingLR(opt, T_max=t_max, eta_min=eta_min), t_max + 1)
    want = [eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2 for t in range(t_max + 1)]
    assert got == pytest.approx(want, rel=1e-12)
    assert got[0] == pytest.approx(base) and got[5] == pytest.approx((base + eta_min) / 2) and got[10] == pytest.approx(eta_min)


def test_lambda_lr_per_group():
    opt = make_opt(1.0, groups=2)
    sched = S.LambdaLR(opt, [lambda e: 0.5**e, lambda e: 1.0 / (e + 1)])
    for e in range(4):
        assert sched.get_last_lr() == pytest.approx([0.5**e, 2.0 / (e + 1)])
        sched.step()
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        S.LambdaLR(opt, [lambda e: 1.0])


def test_warmup_then_cosine_with_sequential_lr():
    opt = make_opt(1.0)
    warmup = S.LinearLR(opt, start_factor=0.2, total_iters=4)
    decay = S.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    sched = S.SequentialLR(opt, [warmup, decay], milestones=[4])
    c = math.cos(math.pi / 4)
    want = [0.2, 0.4, 0.6, 0.8, 1.0, (1 + c) / 2, 0.5, (1 - c) / 2, 0.0]
    assert trajectory(opt, sched, 9) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_state_dict_round_trip_through_save(tmp_path):
    def build():
        opt = make_opt(1.0)
        warmup = S.LinearLR(opt, start_factor=0.1, total_iters=3)
        return opt, S.SequentialLR(opt, [warmup, S.CosineAnnealingLR(opt, T_max=6, eta_min=0.01)], milestones=[3])

    opt1, s1 = build()
    trajectory(opt1, s1, 5)
    pyzen.save({"optimizer": opt1.state_dict(), "scheduler": s1.state_dict()}, tmp_path / "ck.safetensors")
    ck = pyzen.load(tmp_path / "ck.safetensors")
    opt2, s2 = build()
    opt2.load_state_dict(ck["optimizer"])
    s2.load_state_dict(ck["scheduler"])
    assert s2.last_epoch == s1.last_epoch == 5 and s2.get_last_lr() == s1.get_last_lr()
    assert trajectory(opt2, s2, 4) == trajectory(opt1, s1, 4)


def test_resume_requires_initial_lr_and_manual_lr_is_overwritten():
    opt = make_opt(1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(opt, step_size=2, last_epoch=3)
    sched = S.StepLR(opt, step_size=2, gamma=0.5)
    opt.param_groups[0]["lr"] = 123.0  # a hand-set rate is used by the next optimizer step ...
    sched.step()
    assert opt.param_groups[0]["lr"] == 1.0  # ... and replaced by the schedule on the next scheduler step
    resumed = S.StepLR(make_opt(1.0), step_size=2)
    assert resumed.base_lrs == [1.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.StepLR(o, step_size=0),
        lambda o: S.LinearLR(o, start_factor=0.0),
        lambda o: S.LinearLR(o, total_iters=0),
        lambda o: S.CosineAnnealingLR(o, T_max=0),
        lambda o: S.SequentialLR(o, [S.StepLR(o, 1)], milestones=[1]),
    ],
)
def test_invalid_arguments(make):
    with pytest.raises(ValueError):
        make(make_opt())
