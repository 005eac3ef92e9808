"""Verifiable rewards from the reasoning tasks: a task's metric, read as a number.

Every registered task (Countdown, Sudoku, path finding, GSM-style word problems, ...) checks an
answer by the rules of its problem (``Task.verify``) and may offer softer metrics (a share of
digits, cells or steps right). ``task_reward(task, metric)`` turns the metric named ``metric``
("verify" by default: 1 for a correct answer, 0 otherwise, a malformed answer included) into a
reward function ``(examples, answers) -> rewards`` for RL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dlm.errors import DlmUserError
from dlm.tasks import Example, Task

__all__ = ["RewardFn", "task_reward"]

#: ``(examples, answers) -> one reward per answer``.
RewardFn = Callable[[Sequence[Example], Sequence[str]], list[float]]


def task_reward(task: Task, metric: str = "verify") -> RewardFn:
    """The reward ``metric`` of ``task`` gives each answer (a bool becomes 0 or 1)."""
    metrics = task.metrics
    if metric not in metrics:
        raise DlmUserError(
            f"task {task.name!r} has no metric {metric!r} to reward; its metrics: "
            f"{', '.join(metrics)} (set rl.reward to one of them)"
        )
    score = metrics[metric]

    def reward(examples: Sequence[Example], answers: Sequence[str]) -> list[float]:
        if len(examples) != len(answers):
            raise ValueError(f"{len(answers)} answers for {len(examples)} examples")
        return [float(score(example, answer)) for example, answer in zip(examples, answers)]

    return reward
