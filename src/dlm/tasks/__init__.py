"""Problem families with seeded offline generators, tokenizers and verifiers."""

from .addition import AdditionTask
from .base import Example, Task
from .boolean import BooleanTask
from .countdown import CountdownTask
from .gsm import GsmTask
from .multi_sudoku import MultiSudokuTask
from .multiplication import MultiplicationTask
from .path import PathTask
from .sat import SatTask
from .sudoku import SudokuTask
from .sums import SumsTask

TASKS = {
    "addition": AdditionTask,
    "boolean": BooleanTask,
    "countdown": CountdownTask,
    "gsm": GsmTask,
    "multi-sudoku": MultiSudokuTask,
    "multiplication": MultiplicationTask,
    "path": PathTask,
    "sat": SatTask,
    "sudoku": SudokuTask,
    "sums": SumsTask,
}


def get_task(name: str, **options) -> Task:
    """Instantiate a registered task by name with its options."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](**options)


__all__ = [
    "TASKS",
    "AdditionTask",
    "BooleanTask",
    "CountdownTask",
    "GsmTask",
    "MultiplicationTask",
    "Example",
    "MultiSudokuTask",
    "PathTask",
    "SatTask",
    "SudokuTask",
    "SumsTask",
    "Task",
    "get_task",
]
