"""Accuracy of a model on a task's held-out examples, checked by the task's verifier.

Prompts are encoded as in training (prompt + [SEP]), sampled in batches with any sampler
options, decoded without special tokens, and verified by the rules of the problem. The report
carries the accuracy per bucket (the task's ``bucket``: planning distance, givens, n, digits),
self-consistency over k samples, and the sampler's honest cost (forward passes, wall time,
tokens per second).

Any of the task's ``metrics`` (the strict ``verify`` and each paper's own metric, e.g.
Countdown's ``lenient``) can be asked for by name: each is scored on the same answers as the
accuracy (every sample, or the voted answer with ``vote``) and reported overall and per bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from dlm.data import batch_prompts, decode_answers
from dlm.errors import DlmUserError
from dlm.models import DiffusionLM
from dlm.sampling import generate, settings_for
from dlm.tasks import Example, Metric, Task

from .self_consistency import majority_vote

__all__ = [
    "TaskReport",
    "bucket_accuracy",
    "bucket_metrics",
    "decode_answers",
    "evaluate_task",
    "resolve_metrics",
]

#: The metric reported when none is named: the task's strict verifier.
DEFAULT_METRIC = "verify"


@dataclass
class TaskReport:
    """Verified accuracy, per-bucket accuracy and the sampler's cost on one set of examples."""

    task: str
    accuracy: float
    n_eval: int
    correct: int
    nfe: int
    seconds: float
    generated_tokens: int
    buckets: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: int = 1
    vote: bool = False
    sample_accuracy: float | None = None  # mean single-sample accuracy when samples > 1
    answers: list[str] = field(default_factory=list, repr=False)
    metrics: dict[str, float] = field(default_factory=dict)  # each asked-for metric, overall
    bucket_metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> metrics

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "accuracy": self.accuracy,
            "n_eval": self.n_eval,
            "correct": self.correct,
            "buckets": self.buckets,
            "samples": self.samples,
            "vote": self.vote,
            "sample_accuracy": self.sample_accuracy,
            "metrics": self.metrics,
            "bucket_metrics": self.bucket_metrics,
            "nfe": self.nfe,
            "seconds": self.seconds,
            "generated_tokens": self.generated_tokens,
            "tokens_per_second": self.tokens_per_second,
        }


def resolve_metrics(task: Task, names: Sequence[str] | None = None) -> dict[str, Metric]:
    """The task's metrics called ``names`` (default: the strict verifier), in that order.

    An unknown name is a ``DlmUserError`` that lists the task's metrics.
    """
    available = task.metrics
    wanted = list(dict.fromkeys(names)) if names else [DEFAULT_METRIC]
    for name in wanted:
        if name not in available:
            raise DlmUserError(
                f"task {task.name!r} has no metric {name!r}; its metrics: {', '.join(available)}"
            )
    return {name: available[name] for name in wanted}


def _by_bucket(task: Task, examples: Sequence[Example]) -> dict[str, list[int]]:
    """The example indices under each ``task.bucket`` label, labels sorted."""
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(str(task.bucket(example)), []).append(i)
    return dict(sorted(groups.items()))


def bucket_accuracy(
    task: Task, examples: Sequence[Example], correct: Sequence[bool]
) -> dict[str, dict[str, float]]:
    """Accuracy per ``task.bucket`` label (planning distance, givens, n, digits, ...)."""
    if len(correct) != len(examples):
        raise ValueError(f"{len(correct)} verdicts for {len(examples)} examples")
    out: dict[str, dict[str, float]] = {}
    for label, rows in _by_bucket(task, examples).items():
        hits = sum(bool(correct[i]) for i in rows)
        out[label] = {"accuracy": hits / len(rows), "correct": hits, "n": len(rows)}
    return out


def bucket_metrics(
    task: Task, examples: Sequence[Example], scores: Mapping[str, Sequence[float]]
) -> dict[str, dict[str, float]]:
    """The mean of each metric's per-example scores within each ``task.bucket`` label."""
    return {
        label: {name: sum(values[i] for i in rows) / len(rows) for name, values in scores.items()}
        for label, rows in _by_bucket(task, examples).items()
    }


def _sample_answers(
    model: DiffusionLM,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    examples: Sequence[Example],
    max_new_tokens: int,
    multipass: bool,
    max_passes: int,
    sampler: dict[str, Any],
) -> tuple[list[str], int, float, int]:
    """Answers for a batch of examples, and the cost: (answers, nfe, seconds, tokens)."""
    if multipass:
        from .multipass import multipass_generate

        result = multipass_generate(
            model,
            tokenizer,
            task,
            [e.prompt for e in examples],
            max_thought_tokens=max_new_tokens,
            max_passes=max_passes,
            **sampler,
        )
        return result.answers, result.nfe, result.seconds, result.generated_tokens
    input_ids, mask = batch_prompts(tokenizer, [e.prompt for e in examples])
    fixed = template_canvas(tokenizer, task, examples)
    if fixed is not None:  # answers inside a pinned template: infill the slots
        max_new_tokens = fixed.shape[1]
    out = generate(model, input_ids, mask, max_new_tokens=max_new_tokens, fixed=fixed, **sampler)
    return decode_answers(tokenizer, out.generated), out.nfe, out.wall_time, out.generated_tokens


def template_canvas(
    tokenizer: PreTrainedTokenizerBase, task: Task, examples: Sequence[Example]
) -> torch.Tensor | None:
    """For a task with ``slots``: the (B, N) canvas of target ids with -1 at every slot."""
    if task.slots is None:
        return None
    rows = []
    for example in examples:
        ids = tokenizer.encode(example.target, add_special_tokens=False)
        for position in task.slots(example):
            ids[position] = -1
        rows.append(ids)
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"task {task.name!r}: every template in a batch must have one length")
    return torch.tensor(rows, dtype=torch.long)


def evaluate_task(
    model: DiffusionLM,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    examples: Sequence[Example],
    *,
    max_new_tokens: int,
    batch_size: int = 128,
    samples: int = 1,
    vote: bool = False,
    multipass: bool = False,
    max_passes: int = 12,
    metrics: Sequence[str] | None = None,
    progress: bool = False,
    **sampler: Any,
) -> TaskReport:
    """Sample answers for every example and verify them; ``sampler`` goes to ``generate``.

    With ``samples`` = k > 1 every prompt is sampled k times in the same batch (the sampler
    must be random: a temperature or a policy temperature above 0). With ``vote`` the
    reported accuracy is that of the majority answer (self-consistency, SC@k); without it,
    the mean accuracy of single samples. ``multipass`` generates one thought per pass
    (DoT-MP), ``max_new_tokens`` then bounds one thought.

    ``metrics`` names the task's metrics to report (default: ``"verify"``); each is scored on
    the same answers as the accuracy (every sample, or the voted answer) and averaged overall
    (``report.metrics``) and per bucket (``report.bucket_metrics``).

    ``progress`` draws a bar on stderr (examples done, examples/s, the running accuracy) when
    stderr is a terminal; in a pipe or a log it stays silent.
    """
    chosen = resolve_metrics(task, metrics)
    if not examples:
        raise DlmUserError("no examples to evaluate; the held-out set is empty")
    if samples < 1:
        raise DlmUserError(f"samples must be at least 1; got {samples}")
    if vote and samples < 2:
        raise DlmUserError("voting needs several samples; pass samples >= 2 (--samples K)")
    resolved = settings_for(model, **sampler)  # the checkpoint's defaults included
    random_sampler = resolved.temperature > 0 or resolved.policy_temperature > 0
    if samples > 1 and not random_sampler and not model.is_autoregressive:
        raise DlmUserError(
            "several samples of a greedy sampler are identical; set temperature > 0 "
            "(--temperature) or policy_temperature > 0 for self-consistency"
        )
    per_batch = max(1, batch_size // samples)
    answers: list[str] = []
    scores: dict[str, list[float]] = {name: [] for name in chosen}
    sample_hits = 0
    nfe, seconds, generated = 0, 0.0, 0
    bar = tqdm(
        total=len(examples),
        desc=f"eval {task.name}",
        unit="ex",
        disable=None if progress else True,  # None: only on a terminal
        dynamic_ncols=True,
    )
    for start in range(0, len(examples), per_batch):
        chunk = examples[start : start + per_batch]
        repeated = [e for e in chunk for _ in range(samples)]
        texts, n, secs, toks = _sample_answers(
            model, tokenizer, task, repeated, max_new_tokens, multipass, max_passes, sampler
        )
        nfe, seconds, generated = nfe + n, seconds + secs, generated + toks
        for i, example in enumerate(chunk):
            mine = texts[i * samples : (i + 1) * samples]
            hits = [bool(task.verify(example, text)) for text in mine]
            sample_hits += sum(hits)
            answers.append(majority_vote(mine, task.answer_of) if vote else mine[0])
            scored = [answers[-1]] if vote else mine
            for name, metric in chosen.items():
                scores[name].append(sum(float(metric(example, t)) for t in scored) / len(scored))
        bar.update(len(chunk))
        bar.set_postfix(acc=f"{sample_hits / (len(answers) * samples):.1%}", refresh=False)
    bar.close()
    correct_flags = [bool(task.verify(e, a)) for e, a in zip(examples, answers, strict=True)]
    accuracy = (
        sum(correct_flags) / len(examples) if vote else sample_hits / (len(examples) * samples)
    )
    return TaskReport(
        task=task.name,
        accuracy=accuracy,
        n_eval=len(examples),
        correct=sum(correct_flags),
        nfe=nfe,
        seconds=seconds,
        generated_tokens=generated,
        buckets=bucket_accuracy(task, examples, correct_flags),
        samples=samples,
        vote=vote,
        sample_accuracy=sample_hits / (len(examples) * samples) if samples > 1 else None,
        answers=answers,
        metrics={name: sum(values) / len(values) for name, values in scores.items()},
        bucket_metrics=bucket_metrics(task, examples, scores),
    )
