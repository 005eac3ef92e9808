"""Verifiable rewards for RL: the reasoning tasks' verifiers and unit tests run in the sandbox.

Every reward is a ``RewardFn``: ``(examples, answers) -> one float per answer``.
``task_reward(task, metric)`` reads a task's metric (``verify`` by default);
``unit_test_reward(metric)`` runs each answer against the tests its example carries
(``Example.meta``: ``tests``, ``test``, ``entry_point``, ``prefix``) in ``dlm.sandbox`` and
rewards the share that passed (``"fraction"``) or all of them (``"passed"``).
"""

from .code import (
    CodeReward,
    CodeTask,
    CodeTaskError,
    extract_code,
    score_completion,
    score_completions,
    unit_test_reward,
)
from .tasks import RewardFn, task_reward

__all__ = [
    "CodeReward",
    "CodeTask",
    "CodeTaskError",
    "RewardFn",
    "extract_code",
    "score_completion",
    "score_completions",
    "task_reward",
    "unit_test_reward",
]
