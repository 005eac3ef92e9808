"""Several Sudoku puzzles per example: long answers with real dependencies, for sampler benchmarks.

An example concatenates ``count`` puzzles of one size (prompt) and their solutions (target),
so seven 6x6 puzzles make a 252-token answer. Every cell depends on its row, column and box
and nowhere else, so decoding many tokens per step can go wrong in the way that matters for
parallel decoding. ``verify`` needs every puzzle solved; ``puzzle_accuracy`` is the share of
puzzles solved, the finer metric the sampling benchmark reports. ``render`` draws the answer as
its ``count`` grids, a blank line between them.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (every puzzle solved) and
``puzzle_accuracy`` (the share of puzzles solved).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from transformers import PreTrainedTokenizerFast

from dlm.errors import DlmUserError

from .base import Example, Metric, Progress, Task
from .sudoku import SudokuTask
from .sudoku.task import render_grid

__all__ = ["MultiSudokuTask"]


class MultiSudokuTask(Task):
    name = "multi-sudoku"

    def __init__(self, count: int = 7, **sudoku_options) -> None:
        if count < 1:
            raise DlmUserError(f"count (puzzles per example) must be at least 1; got {count}")
        allowed = inspect.signature(SudokuTask).parameters
        unknown = sorted(set(sudoku_options) - set(allowed))
        if unknown:
            raise DlmUserError(
                f"task 'multi-sudoku' has no option {', '.join(map(repr, unknown))}; "
                f"its options: count, {', '.join(allowed)}"
            )
        self.count = count
        self.single = SudokuTask(**sudoku_options)

    @property
    def max_answer_tokens(self) -> int:
        """Every puzzle's cells and [EOS]."""
        return self.count * self.single.cells + 1

    def tokenizer(self) -> PreTrainedTokenizerFast:
        return self.single.tokenizer()

    def _group(self, puzzles: list[Example]) -> list[Example]:
        k = self.count
        return [
            Example(
                "".join(e.prompt for e in chunk),
                "".join(e.target for e in chunk),
                {"givens": [e.meta["givens"] for e in chunk]},
            )
            for chunk in (puzzles[i : i + k] for i in range(0, len(puzzles) - k + 1, k))
        ]

    def _per_example(self, progress: Progress | None) -> Progress | None:
        """A puzzle-count callback telling `progress` of each example (``count`` puzzles)
        once its last puzzle is taken; None for None."""
        if progress is None:
            return None
        puzzles = 0

        def taken(n: int) -> None:
            nonlocal puzzles
            before, puzzles = puzzles // self.count, puzzles + n
            if puzzles // self.count > before:
                progress(puzzles // self.count - before)

        return taken

    def generate(self, n: int, seed: int, *, progress: Progress | None = None) -> list[Example]:
        """`n` examples of ``count`` distinct puzzles each (``progress``: told of each one)."""
        puzzles = self.single.generate(n * self.count, seed, progress=self._per_example(progress))
        return self._group(puzzles)

    def held_out(
        self, n_train: int, n_test: int, seed: int, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        """The Sudoku task's split, ``count`` puzzles an example (``progress``: told of each
        example as its last puzzle is taken)."""
        train, test = self.single.held_out(
            n_train * self.count, n_test * self.count, seed, progress=self._per_example(progress)
        )
        return self._group(train), self._group(test)

    def _parts(self, text: str) -> list[str]:
        cells = self.single.cells
        return [text[i * cells : (i + 1) * cells] for i in range(self.count)]

    def puzzle_accuracy(self, example: Example, answer: str) -> float:
        """Share of the example's puzzles that ``answer`` solves."""
        answer = answer.strip()
        if len(answer) != len(example.prompt):
            return 0.0
        solved = [
            self.single.verify(Example(p, ""), a)
            for p, a in zip(self._parts(example.prompt), self._parts(answer), strict=True)
        ]
        return sum(solved) / self.count

    def verify(self, example: Example, answer: str) -> bool:
        return self.puzzle_accuracy(example, answer) == 1.0

    def render(self, prompt: str, answer: str) -> str:
        """The answer as ``count`` Sudoku grids, a blank line between them; unchanged unless
        it is exactly ``count`` puzzles' worth of digits."""
        text = answer.strip()
        if len(text) != self.count * self.single.cells:
            return answer
        grids = []
        for part in self._parts(text):
            grid = render_grid(part, self.single.box_rows, self.single.box_cols)
            if grid is None:
                return answer
            grids.append(grid)
        return "\n\n".join(grids)

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "puzzle_accuracy": self.puzzle_accuracy}
