"""Evaluation: verified task accuracy (later: likelihood, lm-eval)."""

from .task_eval import TaskReport, batch_prompts, decode_answers, evaluate_task

__all__ = ["TaskReport", "batch_prompts", "decode_answers", "evaluate_task"]
