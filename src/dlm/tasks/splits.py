"""Named splits of the registered tasks: the settings the papers report, one word each.

``dlm task make countdown --split cd4`` and ``dlm eval ... --task sudoku --split easy`` look
a split up here; its options are the task's constructor options, and explicit ``--option``
values override them.
"""

from __future__ import annotations

from typing import Any

from dlm.errors import DlmUserError

__all__ = ["SPLITS", "split_options"]

SPLITS: dict[str, dict[str, dict[str, Any]]] = {
    "sudoku": {
        # Kaggle-like puzzles MGDM trains on: 31-36 givens, solvable by naked singles.
        "easy": {
            "box_rows": 3,
            "box_cols": 3,
            "min_givens": 31,
            "max_givens": 36,
            "singles_only": True,
        },
        "hard": {"box_rows": 3, "box_cols": 3, "min_givens": 17, "max_givens": 25},
        # The demo's 6x6 puzzles.
        "6x6": {"box_rows": 2, "box_cols": 3, "min_givens": 18, "max_givens": 24},
    },
    "countdown": {
        "cd3": {"numbers": 3},
        "cd4": {"numbers": 4},
        "cd5": {"numbers": 5},
        "24": {"numbers": 4, "split": "24"},
    },
    "sat": {"n5": {"variables": 5}, "n7": {"variables": 7}, "n9": {"variables": 9}},
    "multiplication": {
        "4x4": {"digits": 4},
        "5x5": {"digits": 5},
        "4x4-nocot": {"digits": 4, "cot": False},
        "5x5-nocot": {"digits": 5, "cot": False},
    },
}


def split_options(
    task: str, split: str | None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The constructor options of ``task``'s ``split``, updated with explicit ``options``."""
    merged: dict[str, Any] = {}
    if split is not None:
        known = SPLITS.get(task, {})
        if split not in known:
            listed = ", ".join(known) if known else "none (use --option key=value)"
            raise DlmUserError(f"task {task!r} has no split {split!r}; its splits: {listed}")
        merged.update(known[split])
    merged.update(options or {})
    return merged
