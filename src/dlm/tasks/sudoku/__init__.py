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

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the rule check) and
``cell_accuracy`` (the share of the prompt's blank cells filled with the gold digit; puzzles
here have one solution, so the gold digit is the only right one).

Modules: ``solver`` (grids, exact search, naked singles, the rule check) and ``task`` (puzzle
carving and ``SudokuTask``).
"""

from .solver import (
    ALPHABET,
    count_solutions,
    is_valid_solution,
    random_full_grid,
    solvable_by_naked_singles,
    solve,
)
from .task import SudokuTask

__all__ = [
    "ALPHABET",
    "SudokuTask",
    "count_solutions",
    "is_valid_solution",
    "random_full_grid",
    "solvable_by_naked_singles",
    "solve",
]
