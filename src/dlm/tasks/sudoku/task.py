"""The Sudoku task: puzzles carved from random grids, the MGDM text format, a rule verifier.

Generation, the verifier and the metrics are described in the package docstring
(``dlm.tasks.sudoku``). ``render_grid`` (``SudokuTask.render``) draws an answer as a grid with
``|`` and ``-+-`` between the boxes, for ``dlm generate`` to print.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator, Mapping

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Task

from .solver import (
    ALPHABET,
    _Geometry,
    _geometry,
    _naked_singles,
    _random_full_grid,
    _search,
    count_solutions,
    is_valid_solution,
    solvable_by_naked_singles,
    solve,
)

__all__ = ["SudokuTask", "render_grid"]

# Give up making one puzzle in the givens range after this many fresh grids.
_MAX_GRID_ATTEMPTS = 200


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


# --------------------------------------------------------------------------------------------
# Rendering


def _grid_row(cells: str, box_cols: int) -> str:
    """One grid row: digits spaced, blanks ('0') as '.', a '|' between boxes."""
    shown = ["." if ch == "0" else ch for ch in cells]
    boxes = [" ".join(shown[i : i + box_cols]) for i in range(0, len(shown), box_cols)]
    return " | ".join(boxes)


def _box_rule(n: int, box_cols: int) -> str:
    """The line between two bands of boxes, as wide as a row: ``------+------`` for 6x6."""
    return "-+-".join(["-" * (2 * box_cols - 1)] * (n // box_cols))


def render_grid(text: str, box_rows: int, box_cols: int) -> str | None:
    """``text`` (n*n digits, row-major) as an n-line grid with box separators, else None.

    None when ``text`` is not exactly n*n decimal digits. ``0`` (a blank) is drawn ``.``; a
    digit above n is drawn as written, so a wrong answer still shows where it went wrong.
    """
    n = box_rows * box_cols
    if len(text) != n * n or any(ch not in ALPHABET for ch in text):
        return None
    lines = []
    for r in range(n):
        if r and r % box_rows == 0:
            lines.append(_box_rule(n, box_cols))
        lines.append(_grid_row(text[r * n : (r + 1) * n], box_cols))
    return "\n".join(lines)


class SudokuTask(Task):
    """Sudoku with `box_rows` x `box_cols` boxes (grids of side n = box_rows * box_cols).

    `min_givens` / `max_givens` bound the number of givens of generated puzzles (defaults by
    size below). With `singles_only`, every puzzle is solvable by naked singles alone.

    Default givens: 4x4 -> [6, 8], 6x6 -> [18, 24], 9x9 -> [31, 36] with `singles_only`
    (the Kaggle easy range) or [24, 30] without; other sizes -> [40%, 60%] of the cells.
    """

    name: str = "sudoku"
    unit = "puzzles"

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
            raise DlmUserError(
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

    def verify(self, example: Example, answer: str) -> bool:
        """True when `answer` is a valid full grid that keeps every given of the prompt."""
        return is_valid_solution(answer, example.prompt, self.box_rows, self.box_cols)

    def bucket(self, example: Example) -> str:
        """f"givens{k}", k the number of given cells of the puzzle."""
        return f"givens{sum(ch != '0' for ch in example.prompt)}"

    def render(self, prompt: str, answer: str) -> str:
        """The answer as a grid, ``|`` and ``-+-`` between boxes; unchanged when it is not
        n*n digits. For 4x4 ``"1234341221434321"``::

            1 2 | 3 4
            3 4 | 1 2
            ----+----
            2 1 | 4 3
            4 3 | 2 1
        """
        grid = render_grid(answer.strip(), self.box_rows, self.box_cols)
        return answer if grid is None else grid

    # ---- extras -------------------------------------------------------------------------

    def related_key(self, example: Example) -> Hashable:
        """The solution grid: no train puzzle has a test puzzle's solution, so a held-out
        puzzle is unseen even as another puzzle of the same grid (test puzzles come first)."""
        return example.target

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
        raise DlmUserError(
            f"{self!r}: no puzzle reached the givens range in {_MAX_GRID_ATTEMPTS} grids; "
            "raise min_givens"
        )

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Puzzles drawn from `rng`; ``generate``/``held_out`` take distinct prompts."""
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

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "cell_accuracy": self.cell_accuracy}
