"""Held-out evaluation every ``eval_every`` steps: what it logs, and that it leaves the run alone."""

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dlm.evaluation import HeldOutAccuracy, training_evaluators
from dlm.training import HeldOutLoss, build_model, build_objective, prepare_data, train

from .test_trainer import tiny_config


def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(next((run_dir / "logs").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_eval_every_logs_heldout_loss_and_accuracy_at_its_steps_and_the_last(tmp_path):
    cfg = tiny_config(tmp_path, "optim.max_steps=7", "eval_every=3", "eval_examples=4")
    result, prepared = train(cfg, evaluators=training_evaluators)
    assert [step for step, _ in result.evals] == [3, 6, 7]
    for _, values in result.evals:
        assert set(values) >= {"loss", "ce", "accuracy"}
        assert 0.0 <= values["accuracy"] <= 1.0 and values["accuracy"] * 4 == round(
            values["accuracy"] * 4
        )
    logged = _scalars(tmp_path)
    assert [step for step, _ in logged["eval/loss"]] == [3, 6, 7]
    assert [step for step, _ in logged["eval/accuracy"]] == [3, 6, 7]
    for (_, value), (_, values) in zip(logged["eval/loss"], result.evals, strict=True):
        assert value == pytest.approx(values["loss"], rel=1e-6)
    assert len(prepared.eval) == 8  # every held-out example, encoded as training data is


def test_evaluating_does_not_change_the_training_run(tmp_path):
    plain, _ = train(tiny_config(tmp_path / "plain"))
    evaluated, _ = train(
        tiny_config(tmp_path / "eval", "eval_every=2", "eval_examples=4"),
        evaluators=training_evaluators,
    )
    assert evaluated.evals and not plain.evals
    assert evaluated.losses == plain.losses  # bit for bit: evaluation draws from a forked RNG
    weights = [
        load_file(next((tmp_path / run / "model").glob("*.safetensors")))
        for run in ("plain", "eval")
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_heldout_loss_is_deterministic_and_leaves_the_global_rng_alone(tmp_path):
    cfg = tiny_config(tmp_path)
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.tokenizer)
    loss = HeldOutLoss(build_objective(cfg), prepared.eval, batch_size=3, seed=5)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = loss(model, 0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert loss(model, 0) == first
    assert first["loss"] > 0 and first["ce"] > 0
    assert HeldOutLoss(build_objective(cfg), prepared.eval, batch_size=3, seed=6)(model, 0) != first


def test_accuracy_evaluator_scores_the_first_eval_examples_with_the_task_verifier(tmp_path):
    cfg = tiny_config(tmp_path, "eval_examples=3")
    prepared = prepare_data(cfg)
    [evaluator] = training_evaluators(cfg, prepared)
    assert isinstance(evaluator, HeldOutAccuracy)
    assert list(evaluator.examples) == prepared.eval_examples[:3]
    assert evaluator.max_new_tokens == prepared.task.max_answer_tokens
    assert training_evaluators(tiny_config(tmp_path, "eval_examples=0"), prepared) == []


def test_without_eval_every_nothing_is_evaluated(tmp_path):
    result, _ = train(tiny_config(tmp_path), evaluators=training_evaluators)
    assert result.evals == []
    assert not any(tag.startswith("eval/") for tag in _scalars(tmp_path))
