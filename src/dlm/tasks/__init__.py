"""Problem families with seeded offline generators, tokenizers and verifiers."""

from .base import Example, Task
from .multi_sudoku import MultiSudokuTask
from .sudoku import SudokuTask

TASKS = {"sudoku": SudokuTask, "multi-sudoku": MultiSudokuTask}


def get_task(name: str, **options) -> Task:
    """Instantiate a registered task by name with its options."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](**options)


__all__ = ["TASKS", "Example", "MultiSudokuTask", "SudokuTask", "Task", "get_task"]
