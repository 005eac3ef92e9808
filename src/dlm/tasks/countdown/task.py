"""``CountdownTask``: the CD3/CD4/CD5 and Game-of-24 generators, held-out splits and metrics."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Mapping
from math import factorial

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Progress, Task, take_distinct

from .checker import _STEP, ALPHABET, check_solution, format_steps, lenient_check, parse_prompt
from .lengths import answer_length_bound
from .search import (
    GAME24_MAX_NUMBER,
    GAME24_TARGET,
    MAX_NUMBER,
    MAX_TARGET,
    MIN_TARGET,
    game24_solvable_multisets,
    is_solvable,
    search,
)

__all__ = ["SPLITS", "CountdownTask"]

SPLITS = ("standard", "24")

# Stop looking for a new distinct example after this many duplicates in a row.
_MAX_DUPLICATES_IN_A_ROW = 100_000


class CountdownTask(Task):
    """Countdown with k input numbers (CD3/4/5) or the Game of 24, MGDM text format.

    Options:
        numbers: k, the count of input numbers: 3, 4 or 5 (the ``"24"`` split needs 4).
        split: ``"standard"`` (targets 10..100, numbers 1..99) or ``"24"`` (Game of 24).
        heldout_fraction: share of target values (``"standard"``) or of solvable 4-multisets
            (``"24"``) held out for test; SoS uses 0.1.
        holdout_seed: when set, the held-out set comes from this seed instead of the seed
            passed to ``generate``/``held_out``.

    ``bucket`` is ``"cd{k}"`` for the standard split and ``"24"`` for the Game of 24; each
    example's meta holds ``{"k": k, "target": target}``. ``metrics``: ``"verify"`` (strict)
    and ``"lenient"`` (MGDM's judge).
    """

    name = "countdown"

    def __init__(
        self,
        numbers: int = 4,
        split: str = "standard",
        heldout_fraction: float = 0.1,
        holdout_seed: int | None = None,
    ) -> None:
        if isinstance(numbers, bool) or not isinstance(numbers, int) or numbers not in (3, 4, 5):
            raise DlmUserError(
                f"numbers is the count of input numbers and must be 3, 4 or 5; got {numbers!r}"
            )
        if split not in SPLITS:
            raise DlmUserError(f"split must be one of {SPLITS}; got {split!r}")
        if split == "24" and numbers != 4:
            raise DlmUserError(f"the Game-of-24 split uses 4 numbers; set numbers=4, not {numbers}")
        if not 0.0 < float(heldout_fraction) < 1.0:
            raise DlmUserError(
                f"heldout_fraction must lie strictly between 0 and 1; got {heldout_fraction!r}"
            )
        if holdout_seed is not None and not isinstance(holdout_seed, int):
            raise DlmUserError(f"holdout_seed must be an int or None; got {holdout_seed!r}")
        self.numbers = numbers
        self.split = split
        self.heldout_fraction = float(heldout_fraction)
        self.holdout_seed = holdout_seed
        pool = self._pool()
        self._n_heldout = int(len(pool) * self.heldout_fraction)
        if not 1 <= self._n_heldout < len(pool):
            raise DlmUserError(
                f"heldout_fraction={heldout_fraction} holds out {self._n_heldout} of {len(pool)} "
                "values; choose a fraction that leaves at least one on each side"
            )

    def __repr__(self) -> str:
        return (
            f"CountdownTask(numbers={self.numbers}, split={self.split!r}, "
            f"heldout_fraction={self.heldout_fraction}, holdout_seed={self.holdout_seed})"
        )

    @property
    def max_answer_tokens(self) -> int:
        """An upper bound on len(target) + 1 ([EOS]) over all correct answers of this split."""
        if self.split == "24":
            bound = answer_length_bound(4, GAME24_MAX_NUMBER, GAME24_TARGET)
        else:
            bound = answer_length_bound(self.numbers, MAX_NUMBER, MAX_TARGET)
        return bound + 1

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over ``0123456789*+-/=,`` (MGDM's order, ids 5..20)."""
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        """Strict check of `answer` against the numbers and target in the prompt."""
        try:
            nums, target = parse_prompt(example.prompt)
        except ValueError:
            return False
        return check_solution(nums, target, answer)

    # ---- extras -------------------------------------------------------------------------

    def lenient_verify(self, example: Example, answer: str) -> bool:
        """MGDM's ``metric.py`` Countdown judge (arithmetic and final value only)."""
        return lenient_check(answer, example.target)

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "lenient": self.lenient_verify}

    def bucket(self, example: Example) -> str:
        """``"cd{k}"`` for the standard split, ``"24"`` for the Game of 24."""
        if self.split == "24":
            return "24"
        return f"cd{len(parse_prompt(example.prompt)[0])}"

    def render(self, prompt: str, answer: str) -> str:
        """The answer's equations one per line (``"86+28=114,31-13=18,114-18=96"`` becomes
        three lines); unchanged unless every comma-separated part is one ``a op b=c`` step.

        Only the form is read, not the arithmetic: a wrong step is shown as written.
        """
        steps = answer.strip().split(",")
        if not all(_STEP.fullmatch(step) for step in steps):
            return answer
        return "\n".join(steps)

    @staticmethod
    def answer_of(text: str) -> str | None:
        """The right side of the last equation as a canonical integer string, else None.

        The last comma-separated part must contain ``=`` and end in digits after its last
        ``=`` (so MGDM's ``"=24"`` reads as ``"24"`` too).
        """
        last = text.strip().split(",")[-1]
        if "=" not in last:
            return None
        rhs = last.rsplit("=", 1)[1]
        if not rhs or not (rhs.isascii() and rhs.isdigit()):
            return None
        return str(int(rhs))

    def held_out_values(self, seed: int) -> list[int] | list[tuple[int, ...]]:
        """The held-out target values (standard) or sorted 4-multisets (``"24"``) for `seed`."""
        order = self._pool()
        random.Random(seed if self.holdout_seed is None else self.holdout_seed).shuffle(order)
        return order[: self._n_heldout]

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """(train, test), each of distinct prompts; test uses only the held-out part.

        Standard split: test targets are held-out target values, train targets never are.
        ``"24"`` split: test multisets are held-out multisets, train multisets never are.
        Train and test come from separate seeded streams, so the train list does not depend
        on `n_test` (and a longer list extends a shorter one); ``generate(n, seed)`` is
        ``held_out(n, 0, seed)[0]``. ``progress`` (None: nothing) is told of each example
        as it is taken.
        """
        if n_train < 0 or n_test < 0:
            raise DlmUserError(f"example counts must be non-negative; got {n_train}, {n_test}")
        held = set(self.held_out_values(seed))
        master = random.Random(seed)
        train_rng = random.Random(master.getrandbits(64))
        test_rng = random.Random(master.getrandbits(64))
        rest = [v for v in self._pool() if v not in held]
        held_sorted = sorted(held)
        self._check_capacity(rest, n_train, "train")
        self._check_capacity(held_sorted, n_test, "test")
        train = self._take(self._stream(train_rng, rest), n_train, "train", progress)
        test = self._take(self._stream(test_rng, held_sorted), n_test, "test", progress)
        return train, test

    def generate(self, n: int, seed: int, *, progress: Progress | None = None) -> list[Example]:
        """`n` distinct training-distribution examples (held-out targets/multisets excluded)."""
        return self.held_out(n, 0, seed, progress=progress)[0]

    # ---- generation ---------------------------------------------------------------------

    def _pool(self) -> list:
        if self.split == "24":
            return list(game24_solvable_multisets())
        return list(range(MIN_TARGET, MAX_TARGET + 1))

    def _stream(self, rng: random.Random, allowed: list) -> Iterator[Example]:
        if self.split == "24":
            return self._game24_stream(rng, set(allowed))
        return self._standard_stream(rng, allowed)

    def _standard_stream(self, rng: random.Random, targets: list[int]) -> Iterator[Example]:
        k = self.numbers
        while True:
            target = rng.choice(targets)
            nums = [rng.randint(1, MAX_NUMBER) for _ in range(k)]
            while not is_solvable(nums, target):
                nums = [rng.randint(1, MAX_NUMBER) for _ in range(k)]
            yield _example(nums, target)

    def _game24_stream(
        self, rng: random.Random, multisets: set[tuple[int, ...]]
    ) -> Iterator[Example]:
        while True:
            nums = [rng.randint(1, GAME24_MAX_NUMBER) for _ in range(4)]
            if tuple(sorted(nums)) not in multisets:
                continue  # unsolvable, or on the other side of the split
            yield _example(nums, GAME24_TARGET)

    def _check_capacity(self, allowed: list, n: int, part: str) -> None:
        """Raise when the Game-of-24 part has fewer distinct prompts than `n`."""
        if self.split != "24":
            return  # tens of millions of distinct prompts per target
        capacity = sum(_orderings(multiset) for multiset in allowed)
        if n > capacity:
            raise DlmUserError(
                f"{self!r}: the {part} part has {len(allowed)} games, {capacity} distinct "
                f"prompts in all, fewer than the {n} asked; ask for fewer or change "
                "heldout_fraction"
            )

    def _take(
        self, stream: Iterator[Example], n: int, part: str, progress: Progress | None
    ) -> list[Example]:
        return take_distinct(
            stream,
            n,
            key=lambda e: e.prompt,
            what=f"{part} examples",
            owner=repr(self),
            max_repeats=_MAX_DUPLICATES_IN_A_ROW,
            progress=progress,
        )[0]


def _orderings(multiset: tuple[int, ...]) -> int:
    """The number of distinct orderings of `multiset`."""
    count = factorial(len(multiset))
    for repeat in Counter(multiset).values():
        count //= factorial(repeat)
    return count


def _example(nums: list[int], target: int) -> Example:
    """The example for solvable `nums` and `target`, its target the first solution found."""
    steps = search(nums, target)
    if steps is None:  # pragma: no cover - is_solvable and the multiset table rule this out
        raise RuntimeError(f"no solution for {nums} -> {target}, yet it was drawn as solvable")
    prompt = ",".join(map(str, [*nums, target]))
    return Example(prompt, format_steps(steps), {"k": len(nums), "target": target})
