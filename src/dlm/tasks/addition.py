"""Long addition: two ``digits``-digit numbers, least-significant digit first.

A task whose answer tokens depend on each other through the carry. Each answer digit is fixed
by the two operand digits at its place and the carry coming in, and the carry is fixed by the
place below unless that place sums to 9, where it passes on what came from further down. Most
digits can be decoded at once; the ones at the top of a run of 9-sums need the digits below
them first, so a sampler that commits many tokens per step is right where the model is sure
and wrong where it guesses a carry: the trade parallel decoding makes, at any answer length.

Long answers are hard to learn in this prompt-then-answer layout: answer digit i must find
operand digit i about 2 x ``digits`` positions back. A 4-layer, 128-wide LLaMA-shape model
with ``digits=254`` (a 256-token answer) stayed at chance (cross-entropy 2.30 = ln 10) for
150 steps of batch 16 on the CPU, so the sampler benchmark uses a text model instead.

Format (every digit of both operands, zeros included, least-significant first)::

    prompt  "3210+9890"      # 123 + 989 with digits=4: "0123" and "0989" reversed
    target  "21110"          # 1112 as five digits "01112", reversed

The prompt is ``a[::-1] + "+" + b[::-1]`` and the target is the ``digits + 1``-digit sum,
also reversed, leading zeros kept, so every answer has the same length. Operand digits are
uniform over 0-9 from ``random.Random(seed)``.

The verifier compares the answer with the exact sum computed from the prompt (Python
integers), not with the stored target. ``bucket`` is the longest run of carries that pass
through a place summing to 9 (``chain0``, ``chain1``, ``chain2``, ``chain3+``): the places
where decoding in parallel is hardest.

Examples are distinct prompts; ``held_out(n_train, n_test, seed)`` is ``generate(n_train +
n_test, seed)`` cut in two (train first), so no test prompt is in train.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the exact sum) and
``digit_accuracy`` (the share of the answer's places holding the right digit).

``min_digits`` mixes lengths: each example's operands have d digits, d uniform in
[``min_digits``, ``digits``] (both operands the same length, the answer d + 1 digits), and
``bucket`` is the length (``d3``, ``d8``). A small model learns the short sums first and the
long ones later, so its accuracy over the mix rises gradually instead of in the one sharp step
a single length shows: the RL benchmark's start.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Progress, Task, take_distinct

__all__ = ["AdditionTask", "add_reversed", "longest_carry_chain"]

ALPHABET = "0123456789+"


def add_reversed(a_reversed: str, b_reversed: str) -> str:
    """The sum of two reversed digit strings as a reversed string one digit longer."""
    width = max(len(a_reversed), len(b_reversed)) + 1
    total = int(a_reversed[::-1]) + int(b_reversed[::-1])
    return str(total).zfill(width)[::-1]


def longest_carry_chain(a_reversed: str, b_reversed: str) -> int:
    """The longest run of places summing to 9 that a carry passes through."""
    carry = 0
    run = 0
    longest = 0
    for x, y in zip(a_reversed, b_reversed, strict=True):
        s = int(x) + int(y)
        if s == 9 and carry:
            run += 1
            longest = max(longest, run)
        else:
            run = 0
        carry = int(s + carry >= 10)
    return longest


class AdditionTask(Task):
    """``digits``-digit addition, reversed digits; see the module docstring for the format."""

    name = "addition"

    def __init__(self, digits: int = 16, min_digits: int | None = None) -> None:
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise DlmUserError(f"digits must be a positive integer; got {digits!r}")
        if min_digits is not None and (
            isinstance(min_digits, bool) or not isinstance(min_digits, int)
            or not 1 <= min_digits <= digits
        ):
            raise DlmUserError(
                f"min_digits must be a whole number in [1, digits={digits}]; got {min_digits!r}"
            )
        self.digits = digits
        self.min_digits = min_digits

    @property
    def max_answer_tokens(self) -> int:
        """The answer's digits and [EOS]."""
        return self.digits + 2

    def tokenizer(self) -> PreTrainedTokenizerFast:
        return build_char_tokenizer(ALPHABET)

    def _example(self, rng: random.Random) -> Example:
        n = self.digits if self.min_digits is None else rng.randint(self.min_digits, self.digits)
        a = "".join(rng.choice("0123456789") for _ in range(n))
        b = "".join(rng.choice("0123456789") for _ in range(n))
        return Example(f"{a}+{b}", add_reversed(a, b), {"chain": longest_carry_chain(a, b)})

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Additions drawn from `rng` (duplicates allowed)."""
        while True:
            yield self._example(rng)

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """Distinct prompts from ``seed``, train first: no test prompt occurs in train;
        ``progress`` (None: nothing) is told of each example as it is taken."""
        space = 100**self.digits
        if n_train + n_test > space // 2:
            raise DlmUserError(
                f"{n_train + n_test} distinct {self.digits}-digit additions asked for but only "
                f"{space} exist; lower n or raise digits"
            )
        return take_distinct(
            self.stream(random.Random(seed)),
            n_train,
            n_test,
            key=self.distinct_key,
            test_first=False,
            what="additions",
            owner=repr(self),
            progress=progress,
        )

    def _operands(self, prompt: str) -> tuple[str, str]:
        a, sep, b = prompt.strip().partition("+")
        low = self.digits if self.min_digits is None else self.min_digits
        if not sep or len(a) != len(b) or not low <= len(a) <= self.digits:
            size = f"{self.digits}" if self.min_digits is None else f"{low}- to {self.digits}"
            raise ValueError(
                f"an addition prompt is two {size}-digit strings joined by '+'; got {prompt!r:.80}"
            )
        return a, b

    def verify(self, example: Example, answer: str) -> bool:
        a, b = self._operands(example.prompt)
        return answer.strip() == add_reversed(a, b)

    def digit_accuracy(self, example: Example, answer: str) -> float:
        """Share of the answer's places that hold the right digit (missing places count wrong)."""
        a, b = self._operands(example.prompt)
        gold = add_reversed(a, b)
        got = answer.strip()
        return sum(x == y for x, y in zip(gold, got)) / len(gold)

    def bucket(self, example: Example) -> str:
        a, b = self._operands(example.prompt)
        if self.min_digits is not None:
            return f"d{len(a)}"
        chain = longest_carry_chain(a, b)
        return f"chain{chain}" if chain < 3 else "chain3+"

    def answer_of(self, text: str) -> str | None:
        text = text.strip()
        return text if text.isdigit() else None

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "digit_accuracy": self.digit_accuracy}
