"""Held-out evaluation during training: what runs every ``eval_every`` steps.

An *evaluator* is any callable ``(model, step) -> {name: value}``; the trainer calls each one
on the main process, in eval mode, without gradients and inside a forked RNG (so evaluating,
or changing ``eval_every`` on resume, never changes the training run's random stream), and logs
the values under ``eval/<name>`` in TensorBoard.

``HeldOutLoss`` is the training objective's loss on the held-out sequences with a fixed seed
(the same masks and times at every evaluation, so the curve moves only with the weights). The
verified task accuracy lives in ``dlm.evaluation`` (a layer above training):
``dlm.evaluation.training_evaluators`` adds it, and ``dlm train`` passes it in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dlm.data import SequenceData
from dlm.models import DiffusionLM

from .objectives import DiffusionObjective

__all__ = ["Evaluator", "HeldOutLoss", "forked_rng"]

#: ``(model, step) -> {name: value}``: one held-out measurement of the model at a step.
Evaluator = Callable[[DiffusionLM, int], dict[str, float]]


def forked_rng(device: torch.device):
    """``torch.random.fork_rng`` over the CPU and, on a GPU, that device: every draw inside
    is forgotten when the block ends."""
    if device.type != "cuda":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.random.fork_rng(devices=[index])


@dataclass
class HeldOutLoss:
    """The objective's mean loss (and cross-entropy) over ``data``, with a fixed seed."""

    objective: Callable
    data: SequenceData
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.objective, DiffusionObjective) and self.objective.scheduled is not None:
            # scheduled sampling feeds the model's own predictions: not a loss of the data
            self.objective = dataclasses.replace(self.objective, scheduled=None)

    def __call__(self, model: DiffusionLM, step: int) -> dict[str, float]:
        device = next(model.parameters()).device
        totals: dict[str, torch.Tensor] = {}
        n = len(self.data)
        with forked_rng(device):
            torch.manual_seed(self.seed)
            for start in range(0, n, self.batch_size):
                rows = torch.arange(start, min(start + self.batch_size, n))
                out = self.objective(model, self.data.select(rows).to(device), step)
                weight = len(rows) / n
                values = {"loss": out.loss, "ce": out.metrics.get("ce")}
                for name, value in values.items():
                    if isinstance(value, torch.Tensor):
                        totals[name] = totals.get(name, 0.0) + value.detach().float() * weight
        return {name: float(value) for name, value in totals.items()}
