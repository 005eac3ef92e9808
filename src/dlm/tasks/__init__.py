"""Problem families with seeded offline generators, tokenizers, verifiers and metrics.

Every registered task subclasses ``Task`` (``dlm.tasks.base``): ``generate``, ``held_out``,
``verify``, ``answer_of``, ``bucket``, ``metrics`` and an optional ``slots``.
"""

import inspect

from dlm.errors import DlmUserError

from .addition import AdditionTask
from .base import Example, Metric, Task, take_distinct
from .boolean import BooleanTask
from .chess import ChessTask
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


#: Tasks whose examples come from a data folder another command makes (not from a seed):
#: chess reads ``dlm chess make``'s Stockfish-labelled self-play. ``dlm task make`` and the
#: generator tests cover ``TASKS`` only; ``get_task`` (training, ``dlm eval``) knows both.
DATA_TASKS: dict[str, type[Task]] = {"chess": ChessTask}


def get_task(name: str, **options) -> Task:
    """Instantiate a registered task by name with its options."""
    known = {**TASKS, **DATA_TASKS}
    if name not in known:
        raise DlmUserError(f"unknown task {name!r}; available tasks: {', '.join(sorted(known))}")
    _check_option_names(name, options)
    return known[name](**options)


def _check_option_names(name: str, options: dict) -> None:
    """A DlmUserError naming an option the task's constructor does not take (not a TypeError)."""
    params = inspect.signature({**TASKS, **DATA_TASKS}[name]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return  # the options are passed on (multi-sudoku's to SudokuTask)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise DlmUserError(
            f"task {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(params) or 'none'}"
        )


__all__ = [
    "DATA_TASKS",
    "TASKS",
    "AdditionTask",
    "BooleanTask",
    "ChessTask",
    "CountdownTask",
    "GsmTask",
    "MultiplicationTask",
    "Example",
    "Metric",
    "MultiSudokuTask",
    "PathTask",
    "SatTask",
    "SudokuTask",
    "SumsTask",
    "Task",
    "get_task",
    "take_distinct",
]
