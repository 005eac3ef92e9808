"""Evaluation: verified task accuracy per bucket, self-consistency, multi-pass reasoning, and
the Monte Carlo ELBO (likelihood, perplexity bound). The lm-eval adapter lives in
``lm_eval_adapter`` and is imported only when lm-eval runs."""

from .during_training import HeldOutAccuracy, training_evaluators
from .likelihood import ElboEstimate, elbo, perplexity_bound
from .multipass import MultipassResult, multipass_generate
from .self_consistency import majority_vote
from .task_eval import TaskReport, batch_prompts, bucket_accuracy, decode_answers, evaluate_task

__all__ = [
    "HeldOutAccuracy",
    "training_evaluators",
    "ElboEstimate",
    "elbo",
    "perplexity_bound",
    "MultipassResult",
    "TaskReport",
    "batch_prompts",
    "bucket_accuracy",
    "decode_answers",
    "evaluate_task",
    "majority_vote",
    "multipass_generate",
]
