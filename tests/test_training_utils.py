"""EMA, crash-safe checkpoints and divergence checks (hfmagic.training)."""

import os

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from hfmagic.training import (
    CheckpointableGenerator,
    ExponentialMovingAverage,
    TrainingDivergedError,
    check_finite,
    list_checkpoints,
    read_checkpoint_state,
    resolve_resume_checkpoint,
    save_checkpoint,
)


def test_ema_follows_mmagic_formula_and_copies_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = ExponentialMovingAverage(model, momentum=0.25)
    ema.update_parameters(model)  # first update: a copy
    w0 = model[0].weight.detach().clone()
    assert torch.equal(ema.module[0].weight, w0)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model.train()(torch.randn(4, 3))  # changes BN running stats
    ema.update_parameters(model)
    expected = 0.75 * w0 + 0.25 * model[0].weight.detach()
    assert torch.allclose(ema.module[0].weight, expected, atol=1e-6)
    assert torch.equal(ema.module[1].running_mean, model[1].running_mean)
    assert ema.num_updates == 2
    assert not any(p.requires_grad for p in ema.parameters())
    with pytest.raises(ValueError, match="momentum"):
        ExponentialMovingAverage(model, momentum=0.0)


def test_checkpoint_roundtrip_is_atomic_and_pruned(tmp_path):
    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True)
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    noise = CheckpointableGenerator(seed=3)
    accelerator.register_for_checkpointing(noise)
    for step in (1, 2, 3):
        model(torch.randn(1, 2)).sum().backward()
        optimizer.step()
        save_checkpoint(accelerator, tmp_path, step, total_limit=2, extra_state={"epoch": 0})
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    assert not list(tmp_path.glob(".checkpoint-*"))
    assert read_checkpoint_state(tmp_path / "checkpoint-3") == {"step": 3, "epoch": 0}
    saved = model.weight.detach().clone()
    expected_noise = torch.randn(3, generator=noise.generator)
    # a half-written checkpoint (killed mid-save) is never picked up
    (tmp_path / ".checkpoint-4.tmp").mkdir()
    (tmp_path / "checkpoint-5").mkdir()  # no state file: incomplete
    latest = resolve_resume_checkpoint("latest", tmp_path)
    assert latest.name == "checkpoint-3"
    with torch.no_grad():
        model.weight.zero_()
    accelerator.load_state(str(tmp_path / "checkpoint-3"))
    assert torch.equal(model.weight, saved)
    assert torch.equal(torch.randn(3, generator=noise.generator), expected_noise)


def test_resaving_a_step_replaces_it_whole_and_state_updates(tmp_path):
    from safetensors.torch import load_file

    from hfmagic.training import update_checkpoint_state

    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare(nn.Linear(2, 2))
    save_checkpoint(accelerator, tmp_path, 2, extra_state={"best_score": 1.0})
    with torch.no_grad():
        model.weight.fill_(7.0)
    # a run resumed from an older checkpoint saves step 2 again: the new state wins, nothing is left over
    save_checkpoint(accelerator, tmp_path, 2, extra_state={"best_score": 2.0})
    assert torch.equal(load_file(tmp_path / "checkpoint-2" / "model.safetensors")["weight"], torch.full((2, 2), 7.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    update_checkpoint_state(tmp_path / "checkpoint-2", best_score=3.5)
    assert read_checkpoint_state(tmp_path / "checkpoint-2") == {"step": 2, "best_score": 3.5}
    assert sorted(p.name for p in (tmp_path / "checkpoint-2").iterdir() if p.name.startswith(".")) == []
    # killed between moving the old step-2 checkpoint aside and renaming the new one in: the old one counts
    os.replace(tmp_path / "checkpoint-2", tmp_path / ".checkpoint-2.aside")
    assert [p.name for p in list_checkpoints(tmp_path)] == [".checkpoint-2.aside"]
    assert resolve_resume_checkpoint("latest", tmp_path).name == ".checkpoint-2.aside"
    save_checkpoint(accelerator, tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_resolve_resume_errors(tmp_path):
    assert resolve_resume_checkpoint(None, tmp_path) is None
    assert resolve_resume_checkpoint("latest", tmp_path) is None
    (tmp_path / "checkpoint-7").mkdir()
    with pytest.raises(FileNotFoundError, match="not a complete hfmagic checkpoint"):
        resolve_resume_checkpoint("checkpoint-7", tmp_path)


def test_check_finite_names_the_checkpoint():
    check_finite({"loss": torch.tensor(1.0)}, step=1, last_checkpoint=None)
    with pytest.raises(TrainingDivergedError, match="step 9.*checkpoint-8"):
        check_finite({"loss_g": torch.tensor(float("nan")), "loss_d": 0.1}, step=9, last_checkpoint="out/checkpoint-8")
