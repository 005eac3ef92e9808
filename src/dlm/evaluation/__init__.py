"""Evaluation: verified task accuracy per bucket, self-consistency, multi-pass reasoning."""

from .multipass import MultipassResult, multipass_generate
from .self_consistency import majority_vote
from .task_eval import TaskReport, batch_prompts, bucket_accuracy, decode_answers, evaluate_task

__all__ = [
    "MultipassResult",
    "TaskReport",
    "batch_prompts",
    "bucket_accuracy",
    "decode_answers",
    "evaluate_task",
    "majority_vote",
    "multipass_generate",
]
