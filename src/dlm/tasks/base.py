"""The contract every task module fulfils: examples as text, a tokenizer, a verifier.

A task is a problem family (Sudoku, Countdown, ...). It generates seeded examples offline as
(prompt, target) text pairs, names the tokenizer its text is written in, and checks a model's
answer by the rules of the problem rather than by string equality with one stored answer.
The data layer (`dlm.data`) turns examples into token ids: prompt + [SEP] stays clean, the
target + [EOS] + padding is the noisable region.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from transformers import PreTrainedTokenizerFast


@dataclass(frozen=True)
class Example:
    """One problem instance: the clean prompt, one gold target, and task-specific metadata."""

    prompt: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "target": self.target, "meta": dict(self.meta)}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Example:
        missing = [k for k in ("prompt", "target") if k not in record]
        if missing:
            raise ValueError(
                f"an example record needs the keys 'prompt' and 'target'; this one lacks {missing}: {record!r:.200}"
            )
        return cls(str(record["prompt"]), str(record["target"]), dict(record.get("meta", {})))


@runtime_checkable
class Task(Protocol):
    """What the trainer, the evaluator and the CLI need from a task."""

    name: str

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """The tokenizer the task's text is written in (character-level for puzzles)."""
        ...

    def generate(self, n: int, seed: int) -> list[Example]:
        """`n` distinct examples, identical for identical (`n`, `seed`, task options)."""
        ...

    def verify(self, example: Example, answer: str) -> bool:
        """True when `answer` solves `example.prompt` by the rules of the problem."""
        ...


def distinct_splits(
    stream: Iterator[tuple[Hashable, Example]],
    n_train: int,
    n_test: int,
    what: str,
    max_duplicates_in_a_row: int = 10_000,
) -> tuple[list[Example], list[Example]]:
    """(train, test) from a seeded stream of (key, example): test first, no key twice.

    Test examples are taken first and later duplicates skipped, so no test example reappears
    in train under the same key. Raises a ValueError naming ``what`` when the stream keeps
    repeating itself (the family has fewer distinct instances than asked for).
    """
    seen: set[Hashable] = set()
    test: list[Example] = []
    train: list[Example] = []
    repeats = 0
    while len(test) < n_test or len(train) < n_train:
        key, example = next(stream)
        if key in seen:
            repeats += 1
            if repeats > max_duplicates_in_a_row:
                raise ValueError(
                    f"found only {len(train)} train / {len(test)} test {what} of the "
                    f"{n_train} / {n_test} asked; ask for fewer or widen the task's options"
                )
            continue
        repeats = 0
        seen.add(key)
        (test if len(test) < n_test else train).append(example)
    return train, test
