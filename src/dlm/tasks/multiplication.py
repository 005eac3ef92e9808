"""Multi-digit multiplication with the Implicit-CoT rationale (DoT's 4x4 and 5x5 data).

Every number is written least-significant digit first, one digit per character, digits
separated by single spaces. The prompt is the two ``digits``-digit operands joined by " * ";
the target lists the partial products of the first operand by each digit of the second, the
running sums in parentheses, and the product after "####". This is the exact text of the
Implicit-CoT files (``data/4_by_4_mult``, ``data/5_by_5_mult``) that Diffusion of Thoughts
trains on; for 3719 * 3349 (``digits=4``)::

    prompt  "9 1 7 3 * 9 4 3 3"
    target  "1 7 4 3 3 + 0 6 7 8 4 1 ( 1 3 2 2 8 1 ) + 0 0 7 5 1 1 1 ( 1 3 9 7 9 2 1 )"
            " + 0 0 0 7 5 1 1 1 #### 1 3 9 4 5 4 2 1"

(the target is one line). With a = 3719 and b = 3349, whose digits least-significant first
are b_0..b_3 = 9, 4, 3, 3, and d = ``digits``:

* thought j (j = 0 .. d-1) is the partial product a * b_j * 10^j as d + 1 + j digits
  (zero-padded at the most-significant end, so the shift shows as leading "0"s and the padding
  as trailing "0"s): 3719 * 9 = 33471 -> "1 7 4 3 3", 3719 * 4 * 10 = 148760 -> "0 6 7 8 4 1";
* thoughts j = 1 .. d-2 are followed by " ( S_j )", the running sum a * (b mod 10^(j+1)) in
  the same d + 1 + j digits: 33471 + 148760 = 182231 -> "( 1 3 2 2 8 1 )"; the last thought
  has no running sum (it would equal the answer);
* thoughts are joined by " + ", then " #### " and the product as 2d digits
  (3719 * 3349 = 12454931 -> "1 3 9 4 5 4 2 1"; small products keep their padding zeros).

The target length depends only on ``digits``. With ``cot=False`` (the answer-only baseline)
the target is just "#### 1 3 9 4 5 4 2 1".

Thoughts (for a multi-pass sampler that writes one thought per pass): `thoughts` splits a
target on " + " before the "####", and the answer part "#### ..." is the last thought:
["1 7 4 3 3", "0 6 7 8 4 1 ( 1 3 2 2 8 1 )", "0 0 7 5 1 1 1 ( 1 3 9 7 9 2 1 )",
"0 0 0 7 5 1 1 1", "#### 1 3 9 4 5 4 2 1"]. `join_thoughts` puts them back together
(" + " between rationale thoughts, " " before the answer part), exactly inverting `thoughts`;
the separator depends on the part (answer parts start with "####"), so joining the first k
thoughts gives the start of the target, as a multi-pass prompt shows it.
DoT itself splits on "+" too; we keep the Implicit-CoT "####" rather than DoT's " = ".

Generation: both operands uniform over the ``digits``-digit numbers (no leading zero), drawn
from one `random.Random(seed)`; examples are distinct (ordered) operand pairs. In
`held_out` no train example uses a test operand pair in either order.

Verification: `verify` compares only the final answer (text after the last "####") with the
true product, as an exact string (the paper's exact match), whatever the rationale says;
`verify_rationale` checks every partial product and running sum as well. Both compute the
product from the prompt, not from the stored target. ``bucket`` is "{digits}x{digits}".
The alphabet is "0123456789*+()# " (with the space).

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the final answer, the
paper's exact match) and ``rationale`` (``verify_rationale``: every partial product and
running sum too).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Progress, take_distinct
from dlm.tasks.thoughts import ANSWER_MARK, ThoughtTask, join_with_separator, split_thoughts
from dlm.tasks.thoughts import answer_after_mark as answer_of

__all__ = [
    "ALPHABET",
    "MultiplicationTask",
    "answer_of",
    "format_prompt",
    "format_target",
    "join_thoughts",
    "parse_prompt",
    "rationale_thoughts",
    "thoughts",
]

ALPHABET = "0123456789*+()# "
MIN_DIGITS = 2
MAX_DIGITS = 9
THOUGHT_SEP = " + "


# --------------------------------------------------------------------------------------------
# Text format


def _reversed_digits(value: int, width: int) -> str:
    """`value` as `width` digits, least-significant first, space separated."""
    text = str(value)
    if value < 0 or len(text) > width:
        raise ValueError(f"{value} does not fit in {width} digits")
    return " ".join(reversed(text.zfill(width)))


def _parse_reversed(text: str) -> int | None:
    """The number written by `_reversed_digits` (any width); None when malformed."""
    parts = text.split(" ")
    if not parts or not all(len(p) == 1 and "0" <= p <= "9" for p in parts):
        return None
    return int("".join(reversed(parts)))


def format_prompt(a: int, b: int, digits: int) -> str:
    """The prompt "a_0 a_1 ... * b_0 b_1 ..." (operands reversed, `digits` digits each)."""
    return f"{_reversed_digits(a, digits)} * {_reversed_digits(b, digits)}"


def parse_prompt(prompt: str) -> tuple[int, int, int]:
    """(a, b, digits) from a prompt; raises ValueError on a malformed prompt."""
    left, sep, right = prompt.strip().partition(" * ")
    a, b = _parse_reversed(left), _parse_reversed(right)
    digits = len(left.split(" "))
    if not sep or a is None or b is None or len(right.split(" ")) != digits:
        raise ValueError(
            f"a multiplication prompt is two space-separated reversed operands of equal "
            f"length joined by ' * ', got {prompt!r:.120}"
        )
    return a, b, digits


def rationale_thoughts(a: int, b: int, digits: int) -> list[str]:
    """The partial-product thoughts (with running sums) of a * b, without the answer."""
    out: list[str] = []
    running = 0
    for j in range(digits):
        width = digits + 1 + j
        partial = a * ((b // 10**j) % 10) * 10**j
        running += partial
        thought = _reversed_digits(partial, width)
        if 0 < j < digits - 1:
            thought += f" ( {_reversed_digits(running, width)} )"
        out.append(thought)
    return out


def _answer_text(a: int, b: int, digits: int) -> str:
    return _reversed_digits(a * b, 2 * digits)


def format_target(a: int, b: int, digits: int, cot: bool = True) -> str:
    """The Implicit-CoT target of a * b (or only "#### answer" without `cot`)."""
    answer = f"{ANSWER_MARK} {_answer_text(a, b, digits)}"
    if not cot:
        return answer
    return join_thoughts([*rationale_thoughts(a, b, digits), answer])


def thoughts(target: str) -> list[str]:
    """`target` split into its thoughts (on THOUGHT_SEP), the answer part "#### ..." last."""
    return split_thoughts(target, THOUGHT_SEP)


def join_thoughts(parts: Sequence[str]) -> str:
    """Inverse of `thoughts`; joining the first k thoughts gives the start of the target."""
    return join_with_separator(parts, THOUGHT_SEP)


# --------------------------------------------------------------------------------------------
# Task


class MultiplicationTask(ThoughtTask):
    """`digits` x `digits` multiplication (2 <= digits <= 9) in the Implicit-CoT format.

    With `cot` (default) the target is the full rationale and the answer; without, only
    "#### answer" (the answer-only baseline).
    """

    name: str = "multiplication"

    def __init__(self, digits: int = 4, cot: bool = True) -> None:
        if isinstance(digits, bool) or not isinstance(digits, int):
            raise DlmUserError(
                f"digits must be an int in [{MIN_DIGITS}, {MAX_DIGITS}], got {digits!r}"
            )
        if not MIN_DIGITS <= digits <= MAX_DIGITS:
            raise DlmUserError(
                f"digits must lie in [{MIN_DIGITS}, {MAX_DIGITS}] (4 and 5 are DoT's sizes), "
                f"got {digits}"
            )
        if not isinstance(cot, bool):
            raise DlmUserError(f"cot must be True or False, got {cot!r}")
        self.digits = digits
        self.cot = cot
        self._lo = 10 ** (digits - 1)
        self._count = 9 * self._lo  # numbers with exactly `digits` digits

    def __repr__(self) -> str:
        return f"MultiplicationTask(digits={self.digits}, cot={self.cot})"

    @property
    def max_answer_tokens(self) -> int:
        """len(target) + 1 for the [EOS]; every target of this task has the same length."""
        return len(format_target(self._lo, self._lo, self.digits, self.cot)) + 1

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over "0123456789*+()# " (ids 5..20)."""
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        """True when the text after the last "####" is exactly the product (rationale ignored)."""
        a, b, digits = parse_prompt(example.prompt)
        return answer_of(answer) == _answer_text(a, b, digits)

    # ---- extras -------------------------------------------------------------------------

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """(train, test): distinct pairs, and no test operand pair in train in either order.

        The test examples come first from the seeded stream of pairs; train pairs whose
        unordered pair {a, b} is a test pair are skipped. ``generate(n, seed)`` is
        ``held_out(n, 0, seed)[0]``. ``progress`` (None: nothing) is told of each example as
        it is made (the pairs are drawn first, the examples, the slow part, made from them).
        """
        total = self._count**2
        self._check_count(n_test, total, "test examples")
        self._check_count(n_train, total, "train examples")
        if n_test:  # the test pairs block 1 or 2 ordered pairs each: is enough left for train?
            _, test_pairs = take_distinct(self._pairs(seed), 0, n_test, max_repeats=None)
            blocked = sum(1 if a == b else 2 for a, b in set(map(_unordered, test_pairs)))
            if n_train > total - blocked:
                raise DlmUserError(
                    f"{self!r} has only {total - blocked} operand pairs left for train after "
                    f"the {n_test} test pairs, {n_train} asked; ask fewer or raise digits"
                )
        train, test = take_distinct(
            self._pairs(seed), n_train, n_test, related=_unordered, max_repeats=None
        )
        return self._examples(train, progress), self._examples(test, progress)

    def _examples(self, pairs: list[tuple[int, int]], progress: Progress | None) -> list[Example]:
        examples = []
        for a, b in pairs:
            examples.append(self.make_example(a, b))
            if progress is not None:
                progress(1)
        return examples

    def make_example(self, a: int, b: int) -> Example:
        """The example for a * b (both must have exactly `digits` digits)."""
        for x in (a, b):
            if not self._lo <= x < 10 * self._lo:
                raise ValueError(f"{self!r}: operand {x} does not have {self.digits} digits")
        return Example(
            format_prompt(a, b, self.digits),
            format_target(a, b, self.digits, self.cot),
            {"a": a, "b": b, "product": a * b},
        )

    def verify_rationale(self, example: Example, answer: str) -> bool:
        """True when `answer` is the full rationale: every partial product, running sum and
        the final answer right, in the exact format (the `cot` option does not matter)."""
        a, b, digits = parse_prompt(example.prompt)
        try:
            got = thoughts(answer.strip())
        except ValueError:
            return False
        want = [*rationale_thoughts(a, b, digits), f"{ANSWER_MARK} {_answer_text(a, b, digits)}"]
        return got == want

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "rationale": self.verify_rationale}

    def bucket(self, example: Example) -> str:
        """ "{digits}x{digits}", read from the prompt."""
        digits = parse_prompt(example.prompt)[2]
        return f"{digits}x{digits}"

    # The answer after "####" and the thoughts, as the module functions read and write them.
    answer_of = staticmethod(answer_of)
    thoughts = staticmethod(thoughts)
    join_thoughts = staticmethod(join_thoughts)

    def _pairs(self, seed: int) -> Iterator[tuple[int, int]]:
        """Operand pairs (a, b), each uniform over the `digits`-digit numbers, from `seed`."""
        rng = random.Random(seed)
        lo, count = self._lo, self._count
        while True:
            yield lo + rng.randrange(count), lo + rng.randrange(count)

    def _check_count(self, n: int, available: int, what: str) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise DlmUserError(f"the number of {what} must be a non-negative int, got {n!r}")
        if n > available:
            raise DlmUserError(
                f"{self!r} has only {available} distinct operand pairs, {n} {what} asked; "
                "ask fewer or raise digits"
            )


def _unordered(pair: tuple[int, int]) -> tuple[int, int]:
    return min(pair), max(pair)
