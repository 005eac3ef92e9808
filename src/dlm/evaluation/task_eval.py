"""Accuracy of a model on a task's held-out examples, checked by the task's verifier.

Prompts are encoded as in training (prompt + [SEP]), sampled in batches with any sampler
options, decoded without special tokens, and verified by the rules of the problem. The report
carries the sampler's honest cost (forward passes, wall time, tokens per second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from dlm.data import encode_prompts
from dlm.models import DiffusionLM
from dlm.tasks import Example, Task

__all__ = ["TaskReport", "evaluate_task", "decode_answers"]


@dataclass
class TaskReport:
    task: str
    accuracy: float
    n_eval: int
    correct: int
    nfe: int
    seconds: float
    generated_tokens: int
    answers: list[str] = field(default_factory=list, repr=False)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "accuracy": self.accuracy,
            "n_eval": self.n_eval,
            "correct": self.correct,
            "nfe": self.nfe,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
        }


def batch_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (B, P) prompt ids and their attention mask."""
    ids = encode_prompts(tokenizer, prompts)
    width = max(len(r) for r in ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros(len(ids), width, dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return input_ids, mask


def decode_answers(tokenizer: PreTrainedTokenizerBase, generated: torch.Tensor) -> list[str]:
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in generated.tolist()]


def evaluate_task(
    model: DiffusionLM,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    examples: Sequence[Example],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
    **sampler: Any,
) -> TaskReport:
    """Sample an answer for every example and verify it; ``sampler`` goes to ``generate``."""
    if not examples:
        raise ValueError("no examples to evaluate; the held-out set is empty")
    answers: list[str] = []
    nfe = 0
    seconds = 0.0
    generated = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        input_ids, mask = batch_prompts(tokenizer, [e.prompt for e in chunk])
        out = model.generate(input_ids, mask, max_new_tokens=max_new_tokens, **sampler)
        answers.extend(decode_answers(tokenizer, out.generated))
        nfe += out.nfe
        seconds += out.wall_time
        generated += out.generated_tokens
    correct = sum(bool(task.verify(e, a)) for e, a in zip(examples, answers, strict=True))
    return TaskReport(
        task=task.name,
        accuracy=correct / len(examples),
        n_eval=len(examples),
        correct=correct,
        nfe=nfe,
        seconds=seconds,
        generated_tokens=generated,
        answers=answers,
    )
