"""Countdown (CD3/CD4/CD5) and Game of 24 as a task: Stream-of-Search generation, exact checks.

Given k input numbers and a target, combine the numbers with + - * / (each number used exactly
once, integers only) to reach the target. As in MGDM, the answer is written as its k-1
equations.

Text format (MGDM), alphabet ``0123456789*+-/=,``, no spaces::

    prompt  "86,28,13,31,96"                  the k input numbers, then the target
    target  "86+28=114,31-13=18,114-18=96"    k-1 steps ``a op b=c``, comma separated

Splits (``split=``):

``"standard"`` (CD3/CD4/CD5, ``numbers`` = k in {3, 4, 5}), generated as Stream-of-Search
(Gandhi et al. 2024) does:

1. the target values 10..100 are shuffled with a seed-derived order and the first
   ``heldout_fraction`` of them (10%, i.e. 9 of 91) are held out: test examples use only
   held-out targets, train examples never do;
2. per example a target is drawn uniformly from its part, then k numbers uniformly from 1..99,
   redrawn until the search below solves them;
3. the search is a depth-first search over unordered pairs of the current numbers (in index
   order i < j; the rest keep their order and the result is appended), trying a+b, a*b,
   larger-smaller and larger/smaller (the latter only when exact; never dividing by 0); the
   first solution found is the gold target. (A DFS over ordered pairs would only repeat the
   commutative cases, since - and / are always written larger first.)

``"24"`` (Game of 24, ``numbers=4`` only; ``cd4_tot24`` in MGDM): four numbers drawn uniformly
from 1..13 whose target is 24, redrawn until the same integer-only search solves them (so
games that need fractions, such as 1,5,5,5, are excluded). The prompt is ``"a,b,c,d,24"``.
MGDM's released ``cd4_tot24`` output is only ``"=24"``; here the target keeps the full
equations, so the strict verifier can check them. Held-out rule: the solvable 4-multisets are
shuffled with the seed-derived order and the first ``heldout_fraction`` of them are held out,
so no test multiset (in any order) appears in train.

The held-out order comes from the ``seed`` given to ``generate``/``generate_splits``, or from
``holdout_seed`` when set (then datasets made with different seeds share one held-out set).
``generate(n, seed)`` returns the training distribution, ``generate_splits(n, 0, seed)[0]``.

Verification:

* ``verify`` (strict): the answer splits on ``,`` into exactly k-1 steps, each ``a op b=c``
  with canonical non-negative integers (no signs, no leading zeros, no spaces) and exact
  arithmetic: ``a-b`` needs a >= b (a negative result cannot be written, as '-' would be
  ambiguous), ``a/b`` needs b > 0 dividing a; + and * take their operands in either order.
  Each step takes its two operands from the multiset of available numbers (initially the
  inputs) and adds its result; the last result must be the target. Any correct solution
  passes, not only the stored one.
* ``lenient_verify`` reproduces MGDM's ``metric.py`` judge for comparability: every
  sub-equation's left side starts with ``\\d+[+-*/]\\d+`` and evaluates (as Python would,
  without ``eval``) to its right side, and the last right side equals the gold one as a
  string; inputs are never checked for use and the step count is free.

Generation speed: a value-set test (``is_solvable``) rejects unsolvable draws before the
depth-first search runs; it agrees with the search (tested). 50,000 examples take about 8 /
10 / 21 s for CD3 / CD4 / CD5 on one core. The random stream is not SoS's (only the procedure
is reproduced).

Answer length: SoS does not cap intermediate values and neither does this module. A value
built from m inputs is at most 99^m. If its parent's value p is known positive (the root: the
target) or its sibling is an input, it is also at most max(p * s, p + s) for s the sibling's
bound: it is p, p plus or times the sibling, or at most the sibling. (A built sibling can be 0,
and x * 0 = 0 frees x.) ``answer_length_bound`` sums the digits under these bounds over the
worst binary tree (every intermediate result is written twice): 22 / 35 / 52 characters for
CD3 / CD4 / CD5 and 30 for the Game of 24, so ``max_answer_tokens`` is 23 / 36 / 53 / 31
(MGDM's AR ``max_new_tokens`` are 24 / 32 / 54). The bound is attained on small ranges
(brute force in the tests).
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from itertools import combinations_with_replacement
from math import factorial

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.tasks.base import Example

__all__ = [
    "ALPHABET",
    "CountdownTask",
    "answer_length_bound",
    "check_solution",
    "format_steps",
    "game24_solvable_multisets",
    "is_solvable",
    "lenient_check",
    "parse_prompt",
    "search",
]

ALPHABET = "0123456789*+-/=,"

MIN_TARGET = 10
MAX_TARGET = 100
MAX_NUMBER = 99  # input numbers are drawn from 1..MAX_NUMBER (SoS: max_target - 1)
GAME24_TARGET = 24
GAME24_MAX_NUMBER = 13
SPLITS = ("standard", "24")

# Stop looking for a new distinct example after this many duplicates in a row.
_MAX_DUPLICATES_IN_A_ROW = 100_000

# One step: canonical non-negative integers (no sign, no leading zero), one operator.
_INT = r"(0|[1-9][0-9]*)"
_STEP = re.compile(_INT + r"([+\-*/])" + _INT + "=" + _INT)
# MGDM's check_eq: the left side must start like this (re.match, not fullmatch).
_MGDM_LEFT = re.compile(r"(\d+)([+\-*/])(\d+)")

Step = tuple[int, str, int, int]  # (a, op, b, c) written "a op b=c"


# --------------------------------------------------------------------------------------------
# Search (Stream-of-Search order)


def _combine(a: int, b: int) -> list[Step]:
    """The steps from the pair (a, b) in SoS order: a+b, a*b, larger-smaller, larger/smaller."""
    steps: list[Step] = [(a, "+", b, a + b), (a, "*", b, a * b)]
    hi, lo = (b, a) if a <= b else (a, b)
    steps.append((hi, "-", lo, hi - lo))
    if lo != 0 and hi % lo == 0:
        steps.append((hi, "/", lo, hi // lo))
    return steps


def _last_step(a: int, b: int, target: int) -> Step | None:
    """The first step (SoS order) from the final pair (a, b) that gives `target`, else None."""
    if a + b == target:
        return (a, "+", b, target)
    if a * b == target:
        return (a, "*", b, target)
    hi, lo = (b, a) if a <= b else (a, b)
    if hi - lo == target:
        return (hi, "-", lo, target)
    if lo and lo * target == hi:
        return (hi, "/", lo, target)
    return None


def _search_three(x: int, y: int, z: int, target: int, path: list[Step]) -> bool:
    """`_dfs` on three numbers: pair (x, y) then z, (x, z) then y, (y, z) then x."""
    for a, b, c in ((x, y, z), (x, z, y), (y, z, x)):
        for step in _combine(a, b):
            last = _last_step(c, step[3], target)
            if last is not None:
                path.append(step)
                path.append(last)
                return True
    return False


def _dfs(nums: list[int], target: int, path: list[Step]) -> bool:
    """Depth-first search; on success `path` holds the first solution found."""
    n = len(nums)
    if n == 3:
        return _search_three(nums[0], nums[1], nums[2], target, path)
    if n == 2:
        last = _last_step(nums[0], nums[1], target)
        if last is not None:
            path.append(last)
        return last is not None
    if n == 1:
        return nums[0] == target
    for i in range(n - 1):
        for j in range(i + 1, n):
            rest = nums[:i] + nums[i + 1 : j] + nums[j + 1 :]
            rest.append(0)
            for step in _combine(nums[i], nums[j]):
                rest[-1] = step[3]
                path.append(step)
                if _dfs(rest, target, path):
                    return True
                path.pop()
    return False


def search(nums: list[int] | tuple[int, ...], target: int) -> list[Step] | None:
    """The first solution the SoS depth-first search finds, as (a, op, b, c) steps, or None."""
    path: list[Step] = []
    return path if _dfs(list(nums), target, path) else None


# A faster yes/no answer for the generator's rejection loop: forward value sets for subsets
# of up to three inputs, then a backward search from the target through the larger subsets.
# It agrees with `search(...) is not None` (tested), but finds no path.


@cache
def _splits(mask: int) -> tuple[tuple[int, int], ...]:
    """Unordered splits (A, B) of the index set `mask`, A no larger than B."""
    out = []
    sub = (mask - 1) & mask
    while sub:
        other = mask ^ sub
        size_a, size_b = sub.bit_count(), other.bit_count()
        if size_a < size_b or (size_a == size_b and sub < other):
            out.append((sub, other))
        sub = (sub - 1) & mask
    return tuple(out)


def _values(a: int, b: int) -> tuple[int, ...]:
    """Every value one step makes from the pair (a, b)."""
    hi, lo = (a, b) if a >= b else (b, a)
    if lo and hi % lo == 0:
        return (a + b, a * b, hi - lo, hi // lo)
    return (a + b, a * b, hi - lo)


def _needed(a: int, target: int) -> list[int]:
    """The values v >= 0 for which one step on (a, v) can give `target` (a != 0 or target != 0)."""
    out = []
    if target >= a:
        out.append(target - a)  # a + v
    if a and target % a == 0:
        out.append(target // a)  # a * v
    out.append(a + target)  # v - a
    if a > target:
        out.append(a - target)  # a - v
    if target:
        if a and a % target == 0:
            out.append(a // target)  # a / v
        if a:
            out.append(a * target)  # v / a
    return out


def _reaches(mask: int, target: int, vals: dict[int, set[int]]) -> bool:
    known = vals.get(mask)
    if known is not None:
        return target in known
    for a_mask, b_mask in _splits(mask):
        for a in vals[a_mask]:
            if a == 0 and target == 0:
                return True  # 0 * anything
            for need in _needed(a, target):
                if _reaches(b_mask, need, vals):
                    return True
    return False


def is_solvable(nums: list[int] | tuple[int, ...], target: int) -> bool:
    """True when the numbers reach `target` (same answer as ``search(...) is not None``)."""
    k = len(nums)
    if k == 0:
        return False
    vals: dict[int, set[int]] = {1 << i: {v} for i, v in enumerate(nums)}
    masks = sorted(range(1, 1 << k), key=int.bit_count)
    for mask in masks:
        size = mask.bit_count()
        if size < 2 or size > min(3, k - 1):
            continue
        values: set[int] = set()
        for a_mask, b_mask in _splits(mask):
            for a in vals[a_mask]:
                for b in vals[b_mask]:
                    values.update(_values(a, b))
        vals[mask] = values
    return _reaches((1 << k) - 1, target, vals)


def format_steps(steps: list[Step]) -> str:
    """Steps as the target text ``a op b=c,...``."""
    return ",".join(f"{a}{op}{b}={c}" for a, op, b, c in steps)


@cache
def game24_solvable_multisets(max_number: int = GAME24_MAX_NUMBER) -> tuple[tuple[int, ...], ...]:
    """The sorted 4-multisets of 1..`max_number` that the integer-only search takes to 24."""
    return tuple(
        combo
        for combo in combinations_with_replacement(range(1, max_number + 1), 4)
        if search(combo, GAME24_TARGET) is not None
    )


# --------------------------------------------------------------------------------------------
# Parsing and checking


def parse_prompt(prompt: str) -> tuple[list[int], int]:
    """(input numbers, target) from ``"n1,...,nk,target"``; ValueError when malformed."""
    parts = prompt.strip().split(",")
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"a Countdown prompt is comma-separated integers, got {prompt!r:.120}")
    values = [int(p) for p in parts]
    return values[:-1], values[-1]


def _apply(a: int, op: str, b: int) -> int | None:
    """The exact non-negative integer a op b, or None (negative, inexact or division by 0)."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a >= b else None
    if b != 0 and a % b == 0:
        return a // b
    return None


def check_solution(nums: list[int], target: int, answer: str) -> bool:
    """Strict check: k-1 exact steps, operands taken from the available multiset, last = target."""
    parts = answer.strip().split(",")
    if len(parts) != len(nums) - 1:
        return False
    available = Counter(nums)
    result = None
    for part in parts:
        match = _STEP.fullmatch(part)
        if match is None:
            return False
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        if _apply(a, op, b) != c:
            return False
        available[a] -= 1
        available[b] -= 1
        if available[a] < 0 or available[b] < 0:
            return False
        available[c] += 1
        result = c
    return result == target


_BIN_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _arith_eval(node: ast.AST) -> int | float:
    """Python's value of a pure arithmetic expression tree; ValueError for anything else."""
    if isinstance(node, ast.Expression):
        return _arith_eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        return _UNARY_OPS[type(node.op)](_arith_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
        left, right = _arith_eval(node.left), _arith_eval(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
            raise ValueError("exponent too large to evaluate safely")
        return _BIN_OPS[type(node.op)](left, right)
    raise ValueError(f"not plain arithmetic: {ast.dump(node):.80}")


def _mgdm_check_eq(left: str, right: str) -> bool:
    """MGDM's ``check_eq``: ``eval(left) == float(right)`` after a prefix regex, without eval."""
    if _MGDM_LEFT.match(left) is None:
        return False
    try:
        return _arith_eval(ast.parse(left, mode="eval")) == float(right)
    except (SyntaxError, ValueError, ArithmeticError, TypeError):
        return False


def lenient_check(answer: str, gold_target: str) -> bool:
    """MGDM's Countdown judge: each sub-equation holds and the last right sides match.

    `gold_target` is the stored target text (only its last right side is read). Surrounding
    whitespace of `answer` is stripped (MGDM's decoded text has none).
    """
    answer = answer.strip()
    for sub in answer.split(","):
        sides = sub.split("=")
        if len(sides) != 2 or not _mgdm_check_eq(sides[0], sides[1]):
            return False
    return answer.split("=")[-1] == gold_target.split("=")[-1]


# --------------------------------------------------------------------------------------------
# Length bound


def _shapes(k: int) -> list[tuple]:
    """All binary trees with k leaves; a leaf is (), a node (left, right)."""
    if k == 1:
        return [()]
    return [(left, right) for i in range(1, k) for left in _shapes(i) for right in _shapes(k - i)]


def _leaves(tree: tuple) -> int:
    return 1 if tree == () else _leaves(tree[0]) + _leaves(tree[1])


def _tree_chars(tree: tuple, bound: int, max_number: int, is_root: bool) -> int:
    """Characters the values of `tree` take in the answer, given the bound on its own value.

    A child's value is at most max_number ** (its leaves). When its parent's value is known to
    be positive (the root: the target) or its sibling is an input (1..max_number), the child is
    also at most max(parent + sibling, parent * sibling, sibling): it is the parent, the parent
    plus or times the sibling, or below the sibling. (Otherwise child * 0 = 0 leaves it free.)
    """
    if tree == ():
        return len(str(min(bound, max_number)))
    total = len(str(bound)) * (1 if is_root else 2)  # a result is written again as an operand
    for child, sibling in ((tree[0], tree[1]), (tree[1], tree[0])):
        child_bound = max_number ** _leaves(child)
        if is_root or sibling == ():
            sibling_max = max_number ** _leaves(sibling)
            child_bound = min(child_bound, max(bound * sibling_max, bound + sibling_max))
        total += _tree_chars(child, child_bound, max_number, False)
    return total


def answer_length_bound(k: int, max_number: int = MAX_NUMBER, max_target: int = MAX_TARGET) -> int:
    """An upper bound on len(target text) over every correct k-number answer (see module doc)."""
    if k < 2:
        raise ValueError(f"a Countdown answer needs at least 2 input numbers, got {k}")
    separators = 2 * (k - 1) + (k - 2)  # op and '=' per step, commas between steps
    digits = max(_tree_chars(t, max_target, max_number, True) for t in _shapes(k))
    return digits + separators


# --------------------------------------------------------------------------------------------
# The task


class CountdownTask:
    """Countdown with k input numbers (CD3/4/5) or the Game of 24, MGDM text format.

    Options:
        numbers: k, the count of input numbers: 3, 4 or 5 (the ``"24"`` split needs 4).
        split: ``"standard"`` (targets 10..100, numbers 1..99) or ``"24"`` (Game of 24).
        heldout_fraction: share of target values (``"standard"``) or of solvable 4-multisets
            (``"24"``) held out for test; SoS uses 0.1.
        holdout_seed: when set, the held-out set comes from this seed instead of the seed
            passed to ``generate``/``generate_splits``.

    ``bucket`` is ``"cd{k}"`` for the standard split and ``"24"`` for the Game of 24; each
    example's meta holds ``{"k": k, "target": target}``.
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
            raise ValueError(
                f"numbers is the count of input numbers and must be 3, 4 or 5; got {numbers!r}"
            )
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        if split == "24" and numbers != 4:
            raise ValueError(f"the Game-of-24 split uses 4 numbers; set numbers=4, not {numbers}")
        if not 0.0 < float(heldout_fraction) < 1.0:
            raise ValueError(
                f"heldout_fraction must lie strictly between 0 and 1; got {heldout_fraction!r}"
            )
        if holdout_seed is not None and not isinstance(holdout_seed, int):
            raise ValueError(f"holdout_seed must be an int or None; got {holdout_seed!r}")
        self.numbers = numbers
        self.split = split
        self.heldout_fraction = float(heldout_fraction)
        self.holdout_seed = holdout_seed
        pool = self._pool()
        self._n_heldout = int(len(pool) * self.heldout_fraction)
        if not 1 <= self._n_heldout < len(pool):
            raise ValueError(
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

    def generate(self, n: int, seed: int) -> list[Example]:
        """`n` distinct training-distribution examples (held-out targets/multisets excluded)."""
        return self.generate_splits(n, 0, seed)[0]

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

    def bucket(self, example: Example) -> str:
        """``"cd{k}"`` for the standard split, ``"24"`` for the Game of 24."""
        if self.split == "24":
            return "24"
        return f"cd{len(parse_prompt(example.prompt)[0])}"

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

    def heldout(self, seed: int) -> list[int] | list[tuple[int, ...]]:
        """The held-out target values (standard) or sorted 4-multisets (``"24"``) for `seed`."""
        order = self._pool()
        random.Random(seed if self.holdout_seed is None else self.holdout_seed).shuffle(order)
        return order[: self._n_heldout]

    def generate_splits(
        self, n_train: int, n_test: int, seed: int
    ) -> tuple[list[Example], list[Example]]:
        """(train, test), each of distinct prompts; test uses only the held-out part.

        Standard split: test targets are held-out target values, train targets never are.
        ``"24"`` split: test multisets are held-out multisets, train multisets never are.
        Train and test come from separate seeded streams, so the train list does not depend
        on `n_test` (and a longer list extends a shorter one).
        """
        if n_train < 0 or n_test < 0:
            raise ValueError(f"example counts must be non-negative; got {n_train}, {n_test}")
        held = set(self.heldout(seed))
        master = random.Random(seed)
        train_rng = random.Random(master.getrandbits(64))
        test_rng = random.Random(master.getrandbits(64))
        rest = [v for v in self._pool() if v not in held]
        held_sorted = sorted(held)
        self._check_capacity(rest, n_train, "train")
        self._check_capacity(held_sorted, n_test, "test")
        train = self._take(self._stream(train_rng, rest), n_train, "train")
        test = self._take(self._stream(test_rng, held_sorted), n_test, "test")
        return train, test

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
            raise ValueError(
                f"{self!r}: the {part} part has {len(allowed)} games, {capacity} distinct "
                f"prompts in all, fewer than the {n} asked; ask for fewer or change "
                "heldout_fraction"
            )

    def _take(self, stream: Iterator[Example], n: int, part: str) -> list[Example]:
        out: list[Example] = []
        seen: set[str] = set()
        dup_run = 0
        while len(out) < n:
            ex = next(stream)
            if ex.prompt in seen:
                dup_run += 1
                if dup_run > _MAX_DUPLICATES_IN_A_ROW:
                    raise ValueError(
                        f"{self!r} found only {len(out)} distinct {part} examples of the {n} "
                        "asked; ask for fewer"
                    )
                continue
            dup_run = 0
            seen.add(ex.prompt)
            out.append(ex)
        return out


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
