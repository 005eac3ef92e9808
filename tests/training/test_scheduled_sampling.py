"""Tests for DoT scheduled sampling: the gold probability, the share of rows rebuilt, and the
inputs rebuilt from the model's own confidence-ordered predictions."""

from __future__ import annotations

import pytest
import torch

from dlm.data import SequenceData
from dlm.training import load_train_config
from dlm.training.objectives import build_objective
from dlm.training.scheduled_sampling import ScheduledSampling, own_prediction_inputs
from helpers import MASK_ID, tiny_model


def test_gold_probability_falls_linearly_to_min_prob() -> None:
    s = ScheduledSampling(min_prob=0.95, ramp_steps=100)
    assert s.gold_prob(0) == 1.0
    assert s.gold_prob(50) == pytest.approx(0.975)
    assert s.gold_prob(100) == pytest.approx(0.95)
    assert s.gold_prob(10_000) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        ScheduledSampling(min_prob=1.5, ramp_steps=10)


def test_rows_are_replaced_in_the_documented_proportion() -> None:
    torch.manual_seed(0)
    s = ScheduledSampling(min_prob=0.7, ramp_steps=100)
    assert not s.rows_to_replace(50_000, 0, torch.device("cpu")).any()
    share = s.rows_to_replace(50_000, 50, torch.device("cpu")).float().mean().item()
    assert share == pytest.approx(0.15, abs=0.01)
    share = s.rows_to_replace(50_000, 500, torch.device("cpu")).float().mean().item()
    assert share == pytest.approx(0.30, abs=0.01)


class Preferring:
    """Logits that always predict token 7, more confidently further right."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ids: torch.Tensor, attention_mask=None) -> torch.Tensor:
        self.calls += 1
        b, n = ids.shape
        logits = torch.zeros(b, n, 12)
        logits[:, :, 7] = torch.arange(n, dtype=torch.float) / n * 5
        return logits


def test_own_predictions_commit_the_clean_share_by_confidence() -> None:
    ids = torch.tensor([[5, 6, 1, 9, 9, 9, 9, 9, 9, 9, 9], [5, 6, 1, 9, 9, 9, 9, 9, 9, 9, 9]])
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    noisable[:, 3:] = True  # 8 noisable positions
    model = Preferring()
    noisy, masked = own_prediction_inputs(
        model, ids, noisable, None, torch.tensor([0.25, 1.0]), MASK_ID, sampler_steps=4
    )
    # Row 0: 6 of 8 positions clean, the 6 most confident (rightmost), all with the model's 7.
    assert noisy[0].tolist() == [5, 6, 1, MASK_ID, MASK_ID, 7, 7, 7, 7, 7, 7]
    # Row 1 is at t = 1: nothing clean.
    assert noisy[1].tolist() == [5, 6, 1] + [MASK_ID] * 8
    assert masked.sum(1).tolist() == [2, 8]
    assert model.calls <= 4
    assert torch.equal(masked, (noisy == MASK_ID) & noisable)


def test_objective_rebuilds_rows_and_reports_the_share() -> None:
    config = load_train_config(
        None,
        [
            "diffusion.scheduled_min_prob=0.0",
            "diffusion.scheduled_ramp_steps=1",
            "diffusion.scheduled_sampler_steps=3",
        ],
    )
    objective = build_objective(config)
    assert objective.scheduled == ScheduledSampling(0.0, 1, 3)
    model = tiny_model("gpt2", shift=False).train()
    torch.manual_seed(0)
    ids = torch.randint(5, 30, (6, 16))
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    noisable[:, 6:] = True
    batch = SequenceData(ids, noisable, noisable.clone())
    out = objective(model, batch, step=5)
    assert float(out.metrics["own_prediction_rows"]) == 1.0
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.training
    assert build_objective(load_train_config(None, [])).scheduled is None


def test_objective_restores_train_mode_when_its_own_decoding_raises(monkeypatch) -> None:
    import dlm.training.objectives as objectives

    def broken(model, *args, **kwargs):
        assert not model.training  # the rows are decoded in eval mode
        raise RuntimeError("decoding failed")

    monkeypatch.setattr(objectives, "own_prediction_inputs", broken)
    config = load_train_config(
        None, ["diffusion.scheduled_min_prob=0.0", "diffusion.scheduled_ramp_steps=1"]
    )
    model = tiny_model("gpt2", shift=False).train()
    ids = torch.randint(5, 30, (4, 12), generator=torch.Generator().manual_seed(0))
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    noisable[:, 4:] = True
    with pytest.raises(RuntimeError, match="decoding failed"):
        build_objective(config)(model, SequenceData(ids, noisable, noisable.clone()), step=5)
    assert model.training and all(m.training for m in model.modules())
