"""Diffusion of Thoughts, multi-pass (DoT-MP): one thought per diffusion pass.

A chain-of-thought task (multiplication, boolean, gsm) splits its target into thoughts, the
last one holding the final answer (``#### ...``). DoT-MP trains on one thought at a time:

    prompt = question [SEP] thoughts 1..k-1 (joined as in the target)
    target = thought k

so one example with m thoughts gives m training pairs (``multipass_examples``). At inference
the sampler fills one thought per pass, appends it to the prompt and goes on until the pass
that produces the answer thought (``task.answer_of`` reads an answer) or ``max_passes``
(``dlm.evaluation.multipass``).

Coupled sampling (DoT's ``--glance``): with probability ``coupled_prob`` (0.1 in DoT) a pair
instead has the target ``thought k [SEP] thought k+1``, with only the source clean, so the
previous thought is noised and regenerated together with the next one and the model learns
to repair a thought in the light of what follows. The choice is drawn once per pair from
``random.Random(seed)``, so a run's training set is fixed by its seed.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Sequence

from dlm.errors import DlmUserError

from .base import Example, Task

__all__ = [
    "ANSWER_MARK",
    "ThoughtTask",
    "THOUGHT_SEP",
    "answer_after_mark",
    "join_with_separator",
    "split_rationale",
    "split_thoughts",
    "multipass_examples",
    "pass_prompt",
    "require_thoughts",
]

#: Written before the final answer in the Implicit-CoT format (``... #### 460``).
ANSWER_MARK = "####"

#: Written between the question and the thoughts so far, and between coupled thoughts; the
#: character tokenizers read it as the one [SEP] token.
THOUGHT_SEP = "[SEP]"


def answer_after_mark(text: str) -> str | None:
    """The text after the last "####", stripped; None when there is none or it is empty."""
    _, sep, tail = text.rpartition(ANSWER_MARK)
    answer = tail.strip()
    return answer if sep and answer else None


def split_rationale(target: str) -> tuple[str, str]:
    """``"r1 ... rk #### v"`` -> (``"r1 ... rk"``, ``"#### v"``); the rationale may be empty.

    The rationale must be followed by one space before the first "####". Raises ValueError
    when ``target`` has no "####" (these helpers are for gold targets).
    """
    i = target.find(ANSWER_MARK)
    if i < 0:
        raise ValueError(f"a target ends with '#### answer'; none in {target!r:.120}")
    head, answer = target[:i], target[i:]
    if not head:
        return "", answer
    if not head.endswith(" ") or head == " ":
        raise ValueError(f"the rationale must be followed by ' ####': {target!r:.120}")
    return head[:-1], answer


def split_thoughts(target: str, separator: str) -> list[str]:
    """The rationale's thoughts (split on ``separator``), then the answer part "#### v"."""
    rationale, answer = split_rationale(target)
    return [*rationale.split(separator), answer] if rationale else [answer]


def join_with_separator(parts: Sequence[str], separator: str) -> str:
    """Inverse of ``split_thoughts``: ``separator`` between thoughts, " " before "#### v".

    The separator depends on the part, not on its position, so joining the first k thoughts
    gives the start of the target (what a multi-pass prompt shows); no parts give "".
    """
    text = parts[0] if parts else ""
    for part in parts[1:]:
        text += (" " if part.startswith(ANSWER_MARK) else separator) + part
    return text


class ThoughtTask(Task):
    """A task whose targets are chains of thoughts ending in an answer thought.

    ``answer_of`` (from ``Task``) must return None for a thought that carries no answer: the
    multi-pass sampler goes on until a thought has one.
    """

    @abstractmethod
    def thoughts(self, target: str) -> list[str]:
        """The thoughts of ``target``, the answer part last."""

    @abstractmethod
    def join_thoughts(self, parts: Sequence[str]) -> str:
        """The inverse of ``thoughts``: the first k thoughts joined give the target's start."""


def require_thoughts(task: object) -> ThoughtTask:
    """``task`` as a ``ThoughtTask``; a DlmUserError naming it when it has no thoughts."""
    if not isinstance(task, ThoughtTask):
        name = task.name if isinstance(task, Task) else type(task).__name__
        raise DlmUserError(
            f"task {name!r} has no chain of thought to split into passes; multi-pass needs a "
            "task with thoughts (multiplication, boolean, gsm)"
        )
    return task


def pass_prompt(task: ThoughtTask, question: str, done: Sequence[str]) -> str:
    """The prompt of the pass after the thoughts ``done``."""
    return f"{question}{THOUGHT_SEP}{task.join_thoughts(list(done)) if done else ''}"


def multipass_examples(
    task: object, examples: Sequence[Example], *, coupled_prob: float = 0.0, seed: int = 0
) -> list[Example]:
    """One (question + earlier thoughts, next thought) pair per thought of every example.

    ``meta`` keeps the original example's metadata plus ``pass`` (k, from 0) and ``coupled``.
    """
    task = require_thoughts(task)
    if not 0.0 <= coupled_prob <= 1.0:
        raise DlmUserError(f"coupled_prob must lie in [0, 1]; got {coupled_prob}")
    rng = random.Random(seed)
    out: list[Example] = []
    for example in examples:
        parts = task.thoughts(example.target)
        for k, thought in enumerate(parts):
            coupled = k + 1 < len(parts) and rng.random() < coupled_prob
            target = f"{thought}{THOUGHT_SEP}{parts[k + 1]}" if coupled else thought
            meta = {**example.meta, "pass": k, "coupled": coupled}
            out.append(Example(pass_prompt(task, example.prompt, parts[:k]), target, meta))
    return out
