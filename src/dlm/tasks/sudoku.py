"""Generalised Sudoku as a task: seeded puzzle generation, an exact solver, a rule verifier.

A grid of size n = box_rows * box_cols (4x4 with 2x2 boxes, 6x6 with 2x3 boxes, 9x9 with 3x3
boxes, ...; n <= 9 so every digit is one character) is written row-major as n*n digits, '0'
for a blank. As in MGDM, the prompt is the puzzle string and the target the solution string.

Generation, all from one `random.Random(seed)`:

1. a full grid by randomised backtracking (minimum-remaining-values cell order, digits tried
   in random order);
2. clues removed in random order, each removal kept only while the puzzle keeps exactly one
   solution (proved by the solver: the removed cell may take no other digit in any solution),
   until the number of givens reaches a target drawn uniformly from
   [`min_givens`, `max_givens`]; a grid that cannot get there is dropped and a new one drawn;
3. with `singles_only`, a removal is kept only while the puzzle stays solvable by naked
   singles alone (always fill a cell that has a single candidate), like the Kaggle "easy"
   puzzles MGDM trains on. Such a puzzle has exactly one solution.

The solver works on bitmasks of used digits per row, column and box, picks the empty cell with
the fewest candidates, and stops as soon as `limit` solutions are found.

The verifier checks the rules (every row, column and box a permutation of 1..n, every given
kept), never string equality with the stored solution.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.tasks.base import Example

__all__ = [
    "SudokuTask",
    "count_solutions",
    "solve",
    "solvable_by_naked_singles",
    "random_full_grid",
    "is_valid_solution",
]

ALPHABET = "0123456789"

# Stop looking for a new distinct puzzle after this many duplicates in a row.
_MAX_DUPLICATES_IN_A_ROW = 10_000
# Give up making one puzzle in the givens range after this many fresh grids.
_MAX_GRID_ATTEMPTS = 200


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
        raise ValueError(f"box sides must be positive, got {box_rows}x{box_cols}")
    n = box_rows * box_cols
    if n > 9:
        raise ValueError(
            f"a {box_rows}x{box_cols} box gives {n}x{n} grids; digits are single characters, so n <= 9"
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


# --------------------------------------------------------------------------------------------
# Puzzle making


def _carve(
    geo: _Geometry,
    solution: list[int],
    rng: random.Random,
    target: int,
    singles_only: bool,
) -> list[int]:
    """Remove clues of `solution` in random order while the puzzle stays unique (and, with
    `singles_only`, solvable by naked singles), stopping at `target` givens.

    Returns the puzzle; it may keep more than `target` givens when no further clue can go.
    """
    grid = solution[:]
    n = geo.n
    full = geo.full
    row_of, col_of, box_of = geo.row_of, geo.col_of, geo.box_of
    rows, cols, boxes = [full] * n, [full] * n, [full] * n
    order = list(range(geo.cells))
    rng.shuffle(order)
    givens = geo.cells
    for i in order:
        if givens <= target:
            break
        d = grid[i]
        bit = 1 << (d - 1)
        r, c, b = row_of[i], col_of[i], box_of[i]
        grid[i] = 0
        rows[r] ^= bit
        cols[c] ^= bit
        boxes[b] ^= bit
        # Digits the blank could take given the remaining clues, other than its own.
        alternatives = full & ~(rows[r] | cols[c] | boxes[b]) & ~bit
        keep = True
        if alternatives:
            if singles_only:
                keep = _naked_singles(geo, grid) is not None
            else:
                # Unique iff no solution puts another digit in the blank.
                empties = [j for j in range(geo.cells) if not grid[j] and j != i]
                m = alternatives
                while m and keep:
                    alt = m & -m
                    m ^= alt
                    rows[r] |= alt
                    cols[c] |= alt
                    boxes[b] |= alt
                    if _search(geo, grid, rows, cols, boxes, empties, 1):
                        keep = False
                    rows[r] ^= alt
                    cols[c] ^= alt
                    boxes[b] ^= alt
        if keep:
            givens -= 1
        else:
            grid[i] = d
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
    return grid


def _to_text(grid: list[int]) -> str:
    return "".join(map(str, grid))


class SudokuTask:
    """Sudoku with `box_rows` x `box_cols` boxes (grids of side n = box_rows * box_cols).

    `min_givens` / `max_givens` bound the number of givens of generated puzzles (defaults by
    size below). With `singles_only`, every puzzle is solvable by naked singles alone.

    Default givens: 4x4 -> [6, 8], 6x6 -> [18, 24], 9x9 -> [31, 36] with `singles_only`
    (the Kaggle easy range) or [24, 30] without; other sizes -> [40%, 60%] of the cells.
    """

    name: str = "sudoku"

    def __init__(
        self,
        box_rows: int = 3,
        box_cols: int = 3,
        min_givens: int | None = None,
        max_givens: int | None = None,
        singles_only: bool = False,
    ) -> None:
        self._geo = _geometry(box_rows, box_cols)
        self.box_rows = box_rows
        self.box_cols = box_cols
        self.n = self._geo.n
        self.cells = self._geo.cells
        self.singles_only = bool(singles_only)
        lo, hi = self._default_givens()
        self.min_givens = lo if min_givens is None else int(min_givens)
        self.max_givens = hi if max_givens is None else int(max_givens)
        if not 0 <= self.min_givens <= self.max_givens <= self.cells:
            raise ValueError(
                f"need 0 <= min_givens <= max_givens <= {self.cells}, "
                f"got [{self.min_givens}, {self.max_givens}]"
            )

    def _default_givens(self) -> tuple[int, int]:
        n = self.n
        if n == 4:
            return 6, 8
        if n == 6:
            return 18, 24
        if n == 9:
            return (31, 36) if self.singles_only else (24, 30)
        return round(0.4 * self.cells), round(0.6 * self.cells)

    def __repr__(self) -> str:
        return (
            f"SudokuTask(box_rows={self.box_rows}, box_cols={self.box_cols}, "
            f"min_givens={self.min_givens}, max_givens={self.max_givens}, "
            f"singles_only={self.singles_only})"
        )

    # ---- Task protocol ------------------------------------------------------------------

    @property
    def max_answer_tokens(self) -> int:
        """The solution's cells and [EOS]."""
        return self.cells + 1

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over the digits 0-9 (ids 5..14)."""
        return build_char_tokenizer(ALPHABET)

    def generate(self, n: int, seed: int) -> list[Example]:
        """`n` distinct puzzles (distinct prompts), identical for identical seed and options."""
        out: list[Example] = []
        seen: set[str] = set()
        dup_run = 0
        stream = self._stream(random.Random(seed))
        while len(out) < n:
            ex = next(stream)
            if ex.prompt in seen:
                dup_run += 1
                if dup_run > _MAX_DUPLICATES_IN_A_ROW:
                    raise ValueError(
                        f"{self!r} found only {len(out)} distinct puzzles of the {n} asked"
                    )
                continue
            dup_run = 0
            seen.add(ex.prompt)
            out.append(ex)
        return out

    def verify(self, example: Example, answer: str) -> bool:
        """True when `answer` is a valid full grid that keeps every given of the prompt."""
        return is_valid_solution(answer, example.prompt, self.box_rows, self.box_cols)

    def bucket(self, example: Example) -> str:
        """f"givens{k}", k the number of given cells of the puzzle."""
        return f"givens{sum(ch != '0' for ch in example.prompt)}"

    # ---- extras -------------------------------------------------------------------------

    def generate_splits(
        self, n_train: int, n_test: int, seed: int
    ) -> tuple[list[Example], list[Example]]:
        """(train, test): distinct puzzles, and no test puzzle's solution grid in train.

        The test puzzles come first from the seeded stream; train puzzles whose solution grid
        is a test solution are skipped, so a held-out puzzle is unseen even as another puzzle
        of the same grid.
        """
        stream = self._stream(random.Random(seed))
        seen: set[str] = set()
        test: list[Example] = []
        train: list[Example] = []
        test_solutions: set[str] = set()
        dup_run = 0
        while len(test) < n_test or len(train) < n_train:
            ex = next(stream)
            fresh = ex.prompt not in seen
            if fresh and len(test) < n_test:
                test.append(ex)
                test_solutions.add(ex.target)
            elif fresh and ex.target not in test_solutions:
                train.append(ex)
            else:
                dup_run += 1
                if dup_run > _MAX_DUPLICATES_IN_A_ROW:
                    raise ValueError(
                        f"{self!r} found only {len(train)} train / {len(test)} test puzzles "
                        f"of the {n_train} / {n_test} asked"
                    )
                continue
            dup_run = 0
            seen.add(ex.prompt)
        return train, test

    def make_puzzle(self, rng: random.Random) -> Example:
        """One puzzle (with its solution) drawn from `rng`."""
        geo = self._geo
        lo, hi = self.min_givens, self.max_givens
        for _ in range(_MAX_GRID_ATTEMPTS):
            solution = _random_full_grid(geo, rng)
            target = rng.randint(lo, hi)
            puzzle = _carve(geo, solution, rng, target, self.singles_only)
            givens = sum(1 for v in puzzle if v)
            if lo <= givens <= hi:
                return Example(_to_text(puzzle), _to_text(solution), {"givens": givens})
        raise ValueError(
            f"{self!r}: no puzzle reached the givens range in {_MAX_GRID_ATTEMPTS} grids; "
            "raise min_givens"
        )

    def _stream(self, rng: random.Random) -> Iterator[Example]:
        while True:
            yield self.make_puzzle(rng)

    def solve(self, puzzle: str) -> str | None:
        """One solution of `puzzle`, or None."""
        return solve(puzzle, self.box_rows, self.box_cols)

    def count_solutions(self, puzzle: str, limit: int = 2) -> int:
        """The number of solutions of `puzzle`, counting no further than `limit`."""
        return count_solutions(puzzle, limit, self.box_rows, self.box_cols)

    def solvable_by_naked_singles(self, puzzle: str) -> bool:
        """True when naked singles alone complete `puzzle`."""
        return solvable_by_naked_singles(puzzle, self.box_rows, self.box_cols)

    def cell_accuracy(self, example: Example, answer: str) -> float:
        """Fraction of the prompt's blank cells that `answer` fills with the gold digit.

        Sudoku puzzles here have one solution, so the gold target is the only correct fill.
        A short answer counts its missing cells as wrong.
        """
        text = answer.strip()
        blanks = [i for i, ch in enumerate(example.prompt.strip()) if ch == "0"]
        if not blanks:
            return 1.0
        gold = example.target
        hits = sum(1 for i in blanks if i < len(text) and text[i] == gold[i])
        return hits / len(blanks)
