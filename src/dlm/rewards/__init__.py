"""Verifiable rewards for RL: the reasoning tasks' verifiers and unit tests run in the sandbox."""

from .tasks import RewardFn, task_reward

__all__ = ["RewardFn", "task_reward"]
