"""Reinforcement learning with verifiable rewards for diffusion LMs: group rollouts from the
fast sampler, three log-likelihood estimators (coupled, one_step, weighted) and GRPO's losses.

The objective that puts them together for ``dlm train`` (``objective: grpo``) is
``dlm.training.grpo.GRPOObjective``.
"""

from .estimators import (
    COUPLED_WEIGHTS,
    ESTIMATORS,
    EstimatorMasks,
    combine_coupled,
    draw_masks,
    token_logps,
)
from .losses import (
    clipped_surrogate,
    group_advantages,
    informative_groups,
    k3_kl,
    masked_mean,
    refill_groups,
    weighted_likelihood_loss,
)
from .rollout import Rollouts, generate_rollouts, scored_positions

__all__ = [
    "COUPLED_WEIGHTS",
    "ESTIMATORS",
    "EstimatorMasks",
    "Rollouts",
    "clipped_surrogate",
    "combine_coupled",
    "draw_masks",
    "generate_rollouts",
    "group_advantages",
    "informative_groups",
    "k3_kl",
    "masked_mean",
    "refill_groups",
    "scored_positions",
    "token_logps",
    "weighted_likelihood_loss",
]
