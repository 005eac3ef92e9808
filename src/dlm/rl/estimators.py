"""Per-token log-likelihood estimators of a completion under a masked diffusion LM.

A diffusion LM has no tractable log-likelihood, so policy-gradient RL scores each completion
token by the log-probability the model gives it inside one or more masked copies of
prompt + completion. Three estimators, behind one switch (``rl.estimator``):

* ``one_step`` (d1's diffu-GRPO): one copy with the completion fully masked and each prompt
  token masked with probability ``prompt_mask_prob`` (0.15), drawn afresh per inner iteration;
* ``coupled`` (DiffuCoder's coupled-GRPO): per inner iteration one mask ratio t ~ U(0.2, 0.8)
  and one uniform draw u per position; three copies: the completion fully masked, masked where
  u < t, and the complement (u >= t). Every completion token is masked in exactly one of the
  two partial copies, and its estimate is ``(logp_full + logp_partial) / 2``;
* ``weighted`` (wd1): the one-step copy; the objective (``losses.weighted_likelihood_loss``)
  needs no ratio.

For a model whose prediction does not depend on its input, every estimator returns the exact
log-likelihood of each token (``tests/rl/test_estimators.py``).

Deliberate deviation, with a switch: DiffuCoder weights the partial copies by ``1/t`` and
``1/(1-t)`` before averaging (``coupled_weights="diffucoder"`` reproduces its
``selective_log_softmax`` exactly). Each token is masked in exactly one copy, so the weight is
not an importance correction there: it scales the partial copy's estimate by 1/t or 1/(1-t)
(1.25x to 5x), so even for an input-independent model the result is 1.5x the log-likelihood in
expectation (1.125x to 3x per draw), and the ratio exp(new - old) is raised to that power. dlm's default (``"unbiased"``) averages the two estimates unweighted.

The masks of an inner iteration are drawn once (``draw_masks``) and reused for the old, the
new and the reference policy, so their per-token ratio compares like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlm.diffusion import apply_mask
from dlm.models import denoising_logits

__all__ = [
    "COUPLED_WEIGHTS",
    "ESTIMATORS",
    "EstimatorMasks",
    "combine_coupled",
    "draw_masks",
    "token_logps",
]

ESTIMATORS = ("coupled", "one_step", "weighted")
COUPLED_WEIGHTS = ("unbiased", "diffucoder")


@dataclass
class EstimatorMasks:
    """The masked copies one inner iteration scores."""

    masks: torch.Tensor  # (K, B, L) bool over the whole canvas: K = 1 (one_step), 3 (coupled)
    t: float | None = None  # coupled: the iteration's mask ratio

    @property
    def copies(self) -> int:
        return self.masks.shape[0]


def draw_masks(
    estimator: str,
    completion: torch.Tensor,
    prompt: torch.Tensor,
    *,
    generator: torch.Generator,
    prompt_mask_prob: float = 0.15,
    t_range: tuple[float, float] = (0.2, 0.8),
) -> EstimatorMasks:
    """The copies of ``estimator`` for one inner iteration.

    Args:
        completion: (B, L) bool, the generated positions (masked in the full copy).
        prompt: (B, L) bool, the real prompt tokens (``one_step``/``weighted`` mask some).
        generator: a CPU generator; every draw comes from it, so a seed fixes the masks.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    u = torch.rand(completion.shape, generator=generator).to(completion.device)
    if estimator in ("one_step", "weighted"):
        masked = completion | (prompt & (u < prompt_mask_prob))
        return EstimatorMasks(masked.unsqueeze(0))
    low, high = t_range
    t = low + (high - low) * float(torch.rand((), generator=generator))
    below = u < t
    masks = torch.stack([completion, completion & below, completion & ~below])
    return EstimatorMasks(masks, t)


def combine_coupled(
    logps: torch.Tensor, masks: torch.Tensor, t: float, weights: str = "unbiased"
) -> torch.Tensor:
    """(B, L) coupled estimate from the (3, B, L) log-probs of the three copies: the full copy's
    and, per token, the partial copy where it was masked, averaged."""
    if weights not in COUPLED_WEIGHTS:
        raise ValueError(f"coupled weights must be one of {', '.join(COUPLED_WEIGHTS)}")
    w_below, w_above = (1.0 / t, 1.0 / (1.0 - t)) if weights == "diffucoder" else (1.0, 1.0)
    partial = torch.where(masks[1], logps[1] * w_below, logps[2] * w_above)
    return (logps[0] + partial) / 2


def token_logps(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    attention_mask: torch.Tensor | None,
    plan: EstimatorMasks,
    mask_token_id: int,
    *,
    coupled_weights: str = "unbiased",
    temperature: float = 1.0,
) -> torch.Tensor:
    """(B, L) estimated log-probability of every token of ``tokens`` (read it where scored).

    All copies go through the model in one batch of K * B rows. Logits are divided by the
    rollout ``temperature`` (when positive) before the log-softmax, so the scored policy is the
    one that sampled.
    """
    k = plan.copies
    noisy = apply_mask(tokens.unsqueeze(0).expand(k, -1, -1), plan.masks, mask_token_id)
    mask = None if attention_mask is None else attention_mask.repeat(k, 1)
    logits = denoising_logits(model, noisy.flatten(0, 1), mask, tokens.repeat(k, 1)).float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    targets = tokens.repeat(k, 1).unsqueeze(-1)
    logps = F.log_softmax(logits, dim=-1).gather(-1, targets).squeeze(-1)
    logps = logps.view(k, *tokens.shape)
    if k == 1:
        return logps[0]
    assert plan.t is not None
    return combine_coupled(logps, plan.masks, plan.t, coupled_weights)
