"""Learning-rate schedules: MMEngine's CosineRestartLR and the named schedules of get_sr_scheduler."""

import math

import pytest
import torch

from hfmagic.training.schedulers import SCHEDULER_NAMES, CosineRestartLR, get_sr_scheduler


def _optimizer(lr=1.0, groups=1):
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr * (g + 1)} for g in range(groups)])


def _mmengine_recursive(base_lr, periods, weights, eta_min, steps):
    """MMEngine's CosineRestartParamScheduler._get_value, written out independently: a recursive
    update from the previous value, restarting to base * weight; unchanged after the last period."""
    cumulative = [sum(periods[: i + 1]) for i in range(len(periods))]
    values, current = [], base_lr
    for step in range(steps):
        index = next((i for i, c in enumerate(cumulative) if step < c), None)
        if index is not None:
            start = 0 if index == 0 else cumulative[index - 1]
            t, period = step - start, periods[index]
            if t == 0:
                current = base_lr * weights[index]
            else:
                current = (1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period)) * (current - eta_min) + eta_min
        values.append(current)
    return values


@pytest.mark.parametrize("weights", [[1.0, 1.0, 1.0], [1.0, 0.5, 0.25]])
def test_cosine_restart_equals_mmengine(weights):
    periods, eta_min = [6, 4, 5], 1e-3
    optimizer = _optimizer(lr=0.2, groups=2)
    scheduler = CosineRestartLR(optimizer, periods, weights, eta_min=eta_min)
    got = []
    for _ in range(20):  # 5 steps past the last period: the value is held
        got.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    for group, base in enumerate((0.2, 0.4)):
        expected = _mmengine_recursive(base, periods, weights, eta_min, 20)
        assert [row[group] for row in got] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert got[6][0] == pytest.approx(0.2 * weights[1])  # restart
    assert got[19] == got[14]  # held after the end


def test_mmagic_recipe_values():
    """MSRResNet x4: 2e-4, periods 4 x 250k, eta_min 1e-7."""
    scheduler = CosineRestartLR(_optimizer(lr=2e-4), [250_000] * 4, [1.0] * 4, eta_min=1e-7)
    assert scheduler.lr_at(0, 2e-4) == pytest.approx(2e-4)
    assert scheduler.lr_at(125_000, 2e-4) == pytest.approx((2e-4 + 1e-7) / 2)
    assert scheduler.lr_at(249_999, 2e-4) == pytest.approx(1e-7, abs=1e-13)
    assert scheduler.lr_at(250_000, 2e-4) == pytest.approx(2e-4)
    assert scheduler.lr_at(875_000, 2e-4) == pytest.approx((2e-4 + 1e-7) / 2)


def test_state_dict_resume_continues_the_schedule():
    optimizer = _optimizer()
    scheduler = CosineRestartLR(optimizer, [5, 5], [1.0, 1.0], eta_min=0.0)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    expected = []
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        expected.append(scheduler.get_last_lr()[0])
    optimizer2 = _optimizer()
    resumed = CosineRestartLR(optimizer2, [5, 5], [1.0, 1.0], eta_min=0.0)
    resumed.load_state_dict(state)
    got = []
    for _ in range(4):
        optimizer2.step()
        resumed.step()
        got.append(resumed.get_last_lr()[0])
    assert got == expected


def test_cosine_restart_errors():
    with pytest.raises(ValueError, match="one weight per period"):
        CosineRestartLR(_optimizer(), [5, 5], [1.0])
    with pytest.raises(ValueError, match="positive"):
        CosineRestartLR(_optimizer(), [5, 0], [1.0, 1.0])


def test_named_schedules():
    for name in SCHEDULER_NAMES:
        optimizer = _optimizer()
        scheduler = get_sr_scheduler(name, optimizer, num_training_steps=10, num_warmup_steps=2, milestones=[5], eta_min=0.01)
        lrs = []
        for _ in range(10):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert all(math.isfinite(v) and 0 <= v <= 1.0 for v in lrs), name
    optimizer = _optimizer()
    step_decay = get_sr_scheduler("multistep", optimizer, num_training_steps=10, milestones=[3], gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        step_decay.step()
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5]
    optimizer = _optimizer()
    default = get_sr_scheduler("cosine_restart", optimizer, num_training_steps=8)  # one period over the run
    assert default.periods == [8] and default.lr_at(4, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="milestones"):
        get_sr_scheduler("multistep", _optimizer(), num_training_steps=10)
    with pytest.raises(ValueError, match="Unknown lr_scheduler 'nope'"):
        get_sr_scheduler("nope", _optimizer(), num_training_steps=10)
