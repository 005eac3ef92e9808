"""Multi-pass chain-of-thought inference (DoT-MP): one thought per diffusion pass.

Every row of a batch starts from ``question [SEP]``; each pass samples one thought for every
row still running (a batch of the running rows, ragged prompts left-padded), appends it to
that row's prompt, and retires the row when the thought carries the answer
(``task.answer_of`` reads one) or after ``max_passes``. The returned text is the rationale
joined as in the task's targets, so the task's verifier reads it like a single-pass answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from dlm.errors import DlmUserError
from dlm.models import DiffusionLM
from dlm.sampling import generate
from dlm.tasks.thoughts import pass_prompt, require_thoughts

from .task_eval import batch_prompts, decode_answers

__all__ = ["MultipassResult", "multipass_generate"]


@dataclass
class MultipassResult:
    answers: list[str]
    passes: list[int]  # passes each row took
    nfe: int
    seconds: float
    generated_tokens: int


def multipass_generate(
    model: DiffusionLM,
    tokenizer: PreTrainedTokenizerBase,
    task: object,
    questions: Sequence[str],
    *,
    max_thought_tokens: int,
    max_passes: int = 12,
    **sampler: Any,
) -> MultipassResult:
    """Generate a rationale for every question, one thought per pass.

    ``max_thought_tokens`` bounds one thought; a pass whose prompt (the question and the
    thoughts so far) leaves fewer positions in the model fills only those, and decoding stops
    when none are left.
    """
    thought_task = require_thoughts(task)
    if max_passes < 1:
        raise DlmUserError(f"max_passes (--max-passes) must be at least 1; got {max_passes}")
    done: list[list[str]] = [[] for _ in questions]
    passes = [0] * len(questions)
    running = list(range(len(questions)))
    nfe, seconds, generated = 0, 0.0, 0
    for _ in range(max_passes):
        if not running:
            break
        prompts = [pass_prompt(thought_task, questions[i], done[i]) for i in running]
        input_ids, mask = batch_prompts(tokenizer, prompts)
        # The prompt grows with every thought: a pass fills at most the positions left (the
        # model never trained on a longer sequence); when the batch's longest prompt leaves
        # none, decoding ends here.
        room, limit = max_thought_tokens, getattr(model, "max_positions", None)
        if limit is not None:
            room = min(room, limit - input_ids.shape[1])
        if room < 1:
            break
        out = generate(model, input_ids, mask, max_new_tokens=room, **sampler)
        nfe += out.nfe
        seconds += out.wall_time
        generated += out.generated_tokens
        still: list[int] = []
        for row, thought in zip(running, decode_answers(tokenizer, out.generated), strict=True):
            done[row].append(thought)
            passes[row] += 1
            if thought_task.answer_of(thought) is None:
                still.append(row)
        running = still
    answers = [thought_task.join_thoughts(parts) for parts in done]
    return MultipassResult(answers, passes, nfe, seconds, generated)
