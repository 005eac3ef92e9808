"""Self-consistency: pick one answer out of k samples by majority vote on the final answer.

Diffusion of Thoughts samples k rationales per question and reports the majority answer
(SC@k). Votes are cast on the task's extracted final answer (``task.answer_of``: the number
after ``####``, the product's digits, the whole grid for Sudoku), so two rationales that
reach the same result by different steps count together. Samples whose answer cannot be read
cast no vote; ties go to the answer that appeared first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

__all__ = ["majority_vote"]


def majority_vote(samples: Sequence[str], answer_of: Callable[[str], str | None]) -> str:
    """The first sample whose final answer is the most common one among ``samples``.

    When no sample has a readable answer, the first sample is returned (it will fail the
    verifier, which is the honest outcome).
    """
    if not samples:
        raise ValueError("majority_vote needs at least one sample")
    answers = [answer_of(text) for text in samples]
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return samples[0]
    best = max(counts.values())
    for text, answer in zip(samples, answers, strict=True):
        if answer is not None and counts[answer] == best:
            return text
    raise AssertionError("unreachable: a counted answer has a sample")  # pragma: no cover
