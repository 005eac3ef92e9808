"""The task's verified accuracy as a training-time evaluator (``eval_every``).

``dlm.training`` logs the held-out loss itself; the accuracy needs sampling and the task's
verifier, which live here, one layer above training. ``training_evaluators`` is what ``dlm
train`` hands to ``dlm.training.train``:

    train(config, evaluators=training_evaluators)

Each evaluation samples the first ``eval_examples`` held-out examples with the model's own
sampler defaults (the ones ``dlm generate`` and ``dlm eval`` use: the task's answer length and,
for the demo's model, its sampler) and reports ``accuracy`` and ``accuracy/<bucket>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from transformers import PreTrainedTokenizerBase

from dlm.models import DiffusionLM
from dlm.tasks import Example, Task

from .task_eval import evaluate_task

if TYPE_CHECKING:
    from dlm.training import Evaluator, Prepared, TrainConfig

__all__ = ["HeldOutAccuracy", "training_evaluators"]


@dataclass
class HeldOutAccuracy:
    """Verified accuracy (overall and per bucket) of ``examples`` at one training step."""

    task: Task
    tokenizer: PreTrainedTokenizerBase
    examples: Sequence[Example]
    max_new_tokens: int
    batch_size: int = 128

    def __call__(self, model: DiffusionLM, step: int) -> dict[str, float]:
        report = evaluate_task(
            model,
            self.tokenizer,
            self.task,
            self.examples,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
        )
        values = {"accuracy": report.accuracy}
        if len(report.buckets) > 1:
            values.update({f"accuracy/{k}": b["accuracy"] for k, b in report.buckets.items()})
        return values


def training_evaluators(config: TrainConfig, prepared: Prepared) -> list[Evaluator]:
    """The accuracy evaluator for a task run (none for files, a corpus, DoT-MP, or
    ``eval_examples: 0``; the held-out loss is logged in every case)."""
    task = prepared.task
    if (
        task is None
        or config.data.multipass  # a pass writes one thought: the answer needs multipass decoding
        or not config.eval_examples
        or not prepared.eval_examples
        or task.max_answer_tokens is None
    ):
        return []
    examples = prepared.eval_examples[: config.eval_examples]
    return [HeldOutAccuracy(task, prepared.tokenizer, examples, task.max_answer_tokens)]
