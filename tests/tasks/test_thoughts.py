"""Tests for DoT multi-pass training pairs and coupled sampling."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dlm.tasks import Example
from dlm.tasks.thoughts import THOUGHT_SEP, ThoughtTask, multipass_examples, pass_prompt


class Chain(ThoughtTask):
    name = "chain"

    def tokenizer(self):
        raise NotImplementedError

    def verify(self, example: Example, answer: str) -> bool:
        return answer == example.target

    def thoughts(self, target: str) -> list[str]:
        return target.split("|")

    def join_thoughts(self, parts: Sequence[str]) -> str:
        return "|".join(parts)

    def answer_of(self, text: str) -> str | None:
        return text[1:] if text.startswith("=") else None


def test_one_pair_per_thought_with_the_earlier_thoughts_in_the_prompt() -> None:
    pairs = multipass_examples(Chain(), [Example("q", "a|b|=c", {"id": 7})])
    assert [(p.prompt, p.target) for p in pairs] == [
        (f"q{THOUGHT_SEP}", "a"),
        (f"q{THOUGHT_SEP}a", "b"),
        (f"q{THOUGHT_SEP}a|b", "=c"),
    ]
    assert [p.meta["pass"] for p in pairs] == [0, 1, 2]
    assert all(p.meta["id"] == 7 and not p.meta["coupled"] for p in pairs)
    assert pass_prompt(Chain(), "q", ["a", "b"]) == pairs[2].prompt


def test_coupled_pairs_come_in_the_documented_proportion() -> None:
    examples = [Example(f"q{i}", "a|b|c|d|=e") for i in range(2000)]
    pairs = multipass_examples(Chain(), examples, coupled_prob=0.1, seed=0)
    assert len(pairs) == 2000 * 5
    coupled = [p for p in pairs if p.meta["coupled"]]
    # Only pairs with a next thought can be coupled: 4 of 5 per example.
    assert len(coupled) / (2000 * 4) == pytest.approx(0.1, abs=0.015)
    assert all(p.meta["pass"] < 4 for p in coupled)
    for p in coupled:
        first, second = p.target.split(THOUGHT_SEP)
        parts = ["a", "b", "c", "d", "=e"]
        assert parts.index(first) + 1 == parts.index(second)
    again = multipass_examples(Chain(), examples, coupled_prob=0.1, seed=0)
    assert again == pairs
    assert multipass_examples(Chain(), examples, coupled_prob=0.1, seed=1) != pairs


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="coupled_prob"):
        multipass_examples(Chain(), [], coupled_prob=1.5)

    class Plain:
        name = "sudoku"

    with pytest.raises(ValueError, match="no chain of thought"):
        multipass_examples(Plain(), [Example("q", "t")])
