"""Countdown's solver: the Stream-of-Search depth-first search and a fast solvability test.

``search`` is the depth-first search over unordered pairs of the current numbers that
Stream-of-Search (Gandhi et al. 2024) uses to write gold answers; ``is_solvable`` gives the same
yes/no answer faster for the generator's rejection loop. The number ranges of the task live
here too, since the Game-of-24 table is built from them.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations_with_replacement

__all__ = [
    "GAME24_MAX_NUMBER",
    "GAME24_TARGET",
    "MAX_NUMBER",
    "MAX_TARGET",
    "MIN_TARGET",
    "Step",
    "game24_solvable_multisets",
    "is_solvable",
    "search",
]

MIN_TARGET = 10
MAX_TARGET = 100
MAX_NUMBER = 99  # input numbers are drawn from 1..MAX_NUMBER (SoS: max_target - 1)
GAME24_TARGET = 24
GAME24_MAX_NUMBER = 13

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


@cache
def game24_solvable_multisets(max_number: int = GAME24_MAX_NUMBER) -> tuple[tuple[int, ...], ...]:
    """The sorted 4-multisets of 1..`max_number` that the integer-only search takes to 24."""
    return tuple(
        combo
        for combo in combinations_with_replacement(range(1, max_number + 1), 4)
        if search(combo, GAME24_TARGET) is not None
    )
