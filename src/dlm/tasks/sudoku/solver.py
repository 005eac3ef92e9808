"""Sudoku grids of any box shape: index tables, an exact solver, naked singles, a rule check.

A grid of side n = box_rows * box_cols (n <= 9, one character per digit) is a row-major list
of n*n ints, 0 for a blank. The solver works on bitmasks of used digits per row, column and
box, picks the empty cell with the fewest candidates, and stops as soon as `limit` solutions
are found; with an `rng` it tries digits in random order, which is how full grids are drawn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from dlm.errors import DlmUserError

__all__ = [
    "ALPHABET",
    "count_solutions",
    "is_valid_solution",
    "random_full_grid",
    "solvable_by_naked_singles",
    "solve",
]

ALPHABET = "0123456789"

@dataclass(frozen=True)
class _Geometry:
    """Precomputed index tables for one box shape."""

    box_rows: int
    box_cols: int
    n: int
    cells: int
    full: int  # bitmask with the n digit bits set (bit d-1 stands for digit d)
    row_of: tuple[int, ...]
    col_of: tuple[int, ...]
    box_of: tuple[int, ...]
    peers: tuple[tuple[int, ...], ...]  # the other cells sharing a row, column or box
    popcount: tuple[int, ...]  # popcount[mask] for 0 <= mask <= full
    units: tuple[tuple[int, ...], ...]  # rows, then columns, then boxes


@cache
def _geometry(box_rows: int, box_cols: int) -> _Geometry:
    if box_rows < 1 or box_cols < 1:
        raise DlmUserError(
            f"box_rows and box_cols must each be at least 1, got {box_rows}x{box_cols}"
        )
    n = box_rows * box_cols
    if n > 9:
        raise DlmUserError(
            f"box_rows={box_rows} and box_cols={box_cols} give {n}x{n} grids; digits are single "
            "characters, so box_rows * box_cols must be at most 9"
        )
    cells = n * n
    row_of = tuple(i // n for i in range(cells))
    col_of = tuple(i % n for i in range(cells))
    box_of = tuple(
        (row_of[i] // box_rows) * (n // box_cols) + col_of[i] // box_cols for i in range(cells)
    )
    peers = tuple(
        tuple(
            j
            for j in range(cells)
            if j != i
            and (row_of[j] == row_of[i] or col_of[j] == col_of[i] or box_of[j] == box_of[i])
        )
        for i in range(cells)
    )
    full = (1 << n) - 1
    popcount = tuple(bin(m).count("1") for m in range(full + 1))
    units = (
        tuple(tuple(i for i in range(cells) if row_of[i] == u) for u in range(n))
        + tuple(tuple(i for i in range(cells) if col_of[i] == u) for u in range(n))
        + tuple(tuple(i for i in range(cells) if box_of[i] == u) for u in range(n))
    )
    return _Geometry(
        box_rows, box_cols, n, cells, full, row_of, col_of, box_of, peers, popcount, units
    )


# --------------------------------------------------------------------------------------------
# Parsing and masks


def _parse(puzzle: str | list[int], geo: _Geometry) -> list[int]:
    """The puzzle as a list of ints (0 = blank); raises ValueError on a malformed puzzle."""
    if isinstance(puzzle, str):
        text = puzzle.strip()
        if len(text) != geo.cells or not all("0" <= ch <= "9" for ch in text):
            raise ValueError(
                f"a {geo.n}x{geo.n} puzzle is {geo.cells} digits (0 = blank), got {puzzle!r:.120}"
            )
        grid = [ord(ch) - 48 for ch in text]
    else:
        grid = list(puzzle)
        if len(grid) != geo.cells:
            raise ValueError(f"a {geo.n}x{geo.n} puzzle has {geo.cells} cells, got {len(grid)}")
    if any(not 0 <= v <= geo.n for v in grid):
        raise ValueError(f"cell values must lie in 0..{geo.n}: {puzzle!r:.120}")
    return grid


def _masks(grid: list[int], geo: _Geometry) -> tuple[list[int], list[int], list[int]] | None:
    """Used-digit bitmasks per row, column and box; None when a given repeats in a unit."""
    n = geo.n
    rows, cols, boxes = [0] * n, [0] * n, [0] * n
    row_of, col_of, box_of = geo.row_of, geo.col_of, geo.box_of
    for i, v in enumerate(grid):
        if v:
            bit = 1 << (v - 1)
            r, c, b = row_of[i], col_of[i], box_of[i]
            if (rows[r] | cols[c] | boxes[b]) & bit:
                return None
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    return rows, cols, boxes


# --------------------------------------------------------------------------------------------
# Exact search


def _search(
    geo: _Geometry,
    grid: list[int],
    rows: list[int],
    cols: list[int],
    boxes: list[int],
    empties: list[int],
    limit: int,
    rng: random.Random | None = None,
    found: list[list[int]] | None = None,
) -> int:
    """Count completions of `grid` (up to `limit`), depth-first with the MRV cell order.

    `grid` and the masks are restored on return. With `rng`, candidate digits are tried in
    random order (for grid generation). With `found`, a copy of the first solution is appended.
    """
    full = geo.full
    popcount = geo.popcount
    row_of, col_of, box_of = geo.row_of, geo.col_of, geo.box_of

    def rec(empties: list[int]) -> int:
        if not empties:
            if found is not None and not found:
                found.append(grid[:])
            return 1
        best = -1
        best_mask = 0
        best_count = 99
        for i in empties:
            m = full & ~(rows[row_of[i]] | cols[col_of[i]] | boxes[box_of[i]])
            k = popcount[m]
            if k < best_count:
                if k == 0:
                    return 0
                best, best_mask, best_count = i, m, k
                if k == 1:
                    break
        rest = [j for j in empties if j != best]
        r, c, b = row_of[best], col_of[best], box_of[best]
        bits = []
        m = best_mask
        while m:
            bit = m & -m
            bits.append(bit)
            m ^= bit
        if rng is not None and best_count > 1:
            rng.shuffle(bits)
        total = 0
        for bit in bits:
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            grid[best] = bit.bit_length()
            total += rec(rest)
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            grid[best] = 0
            if total >= limit:
                break
        return total

    return rec(empties)


def _naked_singles(geo: _Geometry, grid: list[int]) -> list[int] | None:
    """Fill `grid` by naked singles alone; the full grid, or None when that gets stuck."""
    masks = _masks(grid, geo)
    if masks is None:
        return None
    rows, cols, boxes = masks
    full, popcount, peers = geo.full, geo.popcount, geo.peers
    row_of, col_of, box_of = geo.row_of, geo.col_of, geo.box_of
    g = grid[:]
    cand = [0] * geo.cells
    stack: list[int] = []
    remaining = 0
    for i, v in enumerate(g):
        if not v:
            m = full & ~(rows[row_of[i]] | cols[col_of[i]] | boxes[box_of[i]])
            if not m:
                return None
            cand[i] = m
            remaining += 1
            if popcount[m] == 1:
                stack.append(i)
    while stack:
        i = stack.pop()
        if g[i]:
            continue
        bit = cand[i]
        g[i] = bit.bit_length()
        remaining -= 1
        for p in peers[i]:
            if not g[p]:
                m = cand[p]
                if m & bit:
                    m ^= bit
                    if not m:
                        return None
                    cand[p] = m
                    if popcount[m] == 1:
                        stack.append(p)
    return g if remaining == 0 else None


# --------------------------------------------------------------------------------------------
# Public solver API (puzzles as digit strings)


def count_solutions(
    puzzle: str | list[int], limit: int = 2, box_rows: int = 3, box_cols: int = 3
) -> int:
    """The number of solutions of `puzzle`, counting no further than `limit`."""
    geo = _geometry(box_rows, box_cols)
    grid = _parse(puzzle, geo)
    masks = _masks(grid, geo)
    if masks is None:
        return 0
    empties = [i for i, v in enumerate(grid) if not v]
    return _search(geo, grid, *masks, empties, limit)


def solve(puzzle: str | list[int], box_rows: int = 3, box_cols: int = 3) -> str | None:
    """One solution of `puzzle` as a digit string, or None when it has none."""
    geo = _geometry(box_rows, box_cols)
    grid = _parse(puzzle, geo)
    masks = _masks(grid, geo)
    if masks is None:
        return None
    empties = [i for i, v in enumerate(grid) if not v]
    found: list[list[int]] = []
    _search(geo, grid, *masks, empties, 1, found=found)
    return "".join(map(str, found[0])) if found else None


def solvable_by_naked_singles(
    puzzle: str | list[int], box_rows: int = 3, box_cols: int = 3
) -> bool:
    """True when repeatedly filling cells that have a single candidate completes the grid."""
    geo = _geometry(box_rows, box_cols)
    return _naked_singles(geo, _parse(puzzle, geo)) is not None


def random_full_grid(rng: random.Random, box_rows: int = 3, box_cols: int = 3) -> str:
    """A random full grid as a digit string: backtracking with digits tried in random order.

    Seeded by `rng`; grids are varied but not exactly uniform over all valid grids.
    """
    geo = _geometry(box_rows, box_cols)
    return "".join(map(str, _random_full_grid(geo, rng)))


def _random_full_grid(geo: _Geometry, rng: random.Random) -> list[int]:
    grid = [0] * geo.cells
    rows, cols, boxes = [0] * geo.n, [0] * geo.n, [0] * geo.n
    found: list[list[int]] = []
    _search(geo, grid, rows, cols, boxes, list(range(geo.cells)), 1, rng=rng, found=found)
    return found[0]


def is_valid_solution(
    answer: str, puzzle: str | None = None, box_rows: int = 3, box_cols: int = 3
) -> bool:
    """True when `answer` is a full valid grid (and keeps every given of `puzzle`, if given)."""
    geo = _geometry(box_rows, box_cols)
    text = answer.strip()
    n = geo.n
    if len(text) != geo.cells:
        return False
    top = chr(48 + n)
    if not all("1" <= ch <= top for ch in text):
        return False
    want = set(ALPHABET[1 : n + 1])
    for unit in geo.units:
        if {text[i] for i in unit} != want:
            return False
    if puzzle is not None:
        givens = _parse(puzzle, geo)
        for i, v in enumerate(givens):
            if v and ord(text[i]) - 48 != v:
                return False
    return True
