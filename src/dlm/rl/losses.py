"""GRPO's pieces as named functions: group advantages, the informative-group filter, the
clipped surrogate, the k3 KL estimate and wd1's weighted log-likelihood.

Rows come in groups of ``group_size`` consecutive rollouts of one prompt.

* ``group_advantages``: reward minus its group's mean, divided by the group's standard
  deviation (+1e-4) when ``scale`` (GRPO, TRL's ``scale_rewards``; wd1's code does not scale);
* ``informative_groups`` / ``refill_groups``: Dream-Coder drops groups whose rewards are all
  equal (their advantage is zero: no signal) and fills their places with copies of informative
  groups, so a batch keeps its size;
* ``clipped_surrogate``: the per-token PPO objective ``-min(r A, clip(r, 1 - low, 1 + high) A)``
  with ``r = exp(new - old)``, averaged over every scored token of the batch (DiffuCoder's and
  Dream-Coder's token-level normalisation), and the share of tokens whose ratio was clipped;
* ``k3_kl``: Schulman's unbiased, non-negative estimate ``exp(ref - new) - (ref - new) - 1``;
* ``weighted_likelihood_loss`` (wd1): ``sum_i (w-_i - w+_i) log p(o_i)`` per group, with
  ``w+ = softmax(psi A)`` and ``w- = softmax(-psi A)`` over the group; no ratio, no old policy.
"""

from __future__ import annotations

import torch

__all__ = [
    "clipped_surrogate",
    "group_advantages",
    "informative_groups",
    "k3_kl",
    "masked_mean",
    "refill_groups",
    "weighted_likelihood_loss",
]


def _groups(values: torch.Tensor, group_size: int) -> torch.Tensor:
    if values.dim() != 1 or values.numel() % group_size:
        raise ValueError(
            f"expected a flat tensor of whole groups of {group_size}; got {tuple(values.shape)}"
        )
    return values.view(-1, group_size)


def group_advantages(
    rewards: torch.Tensor, group_size: int, *, scale: bool = True, eps: float = 1e-4
) -> torch.Tensor:
    """(B,) advantages: each reward minus its group's mean (over the group's std when ``scale``)."""
    groups = _groups(rewards.float(), group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale:
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)
    return centred.flatten()


def informative_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(G,) bool: the groups whose rewards are not all equal."""
    groups = _groups(rewards, group_size)
    return groups.amax(dim=1) > groups.amin(dim=1)


def refill_groups(informative: torch.Tensor) -> torch.Tensor:
    """(G,) group indices: every informative group in its place, every other place taken by the
    informative groups in turn. With no informative group (or all of them) the identity."""
    keep = torch.nonzero(informative).flatten()
    order = torch.arange(informative.numel())
    if keep.numel() in (0, informative.numel()):
        return order
    spare = ~informative
    order[spare] = keep.repeat(int(spare.sum()) // keep.numel() + 1)[: int(spare.sum())]
    return order


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` where ``mask`` holds (0 when it holds nowhere)."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def clipped_surrogate(
    new: torch.Tensor,
    old: torch.Tensor,
    advantages: torch.Tensor,
    scored: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, clip fraction) of the per-token clipped objective over the ``scored`` tokens.

    Args:
        new, old: (B, L) per-token log-probabilities under the policy being trained and the one
            that sampled (detached).
        advantages: (B,) one per rollout, shared by its tokens.
        scored: (B, L) bool, the completion tokens that carry loss.
    """
    ratio = torch.exp(new - old)
    adv = advantages.unsqueeze(1).to(ratio.dtype)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    was_clipped = ((ratio < 1.0 - clip_low) & (adv < 0)) | ((ratio > 1.0 + clip_high) & (adv > 0))
    return masked_mean(per_token, scored), masked_mean(was_clipped.float(), scored).detach()


def k3_kl(new: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-token KL(new || reference) estimate ``exp(ref - new) - (ref - new) - 1`` (>= 0)."""
    delta = reference - new
    return torch.exp(delta) - delta - 1.0


def weighted_likelihood_loss(
    sequence_logps: torch.Tensor, advantages: torch.Tensor, group_size: int, *, psi: float = 1.0
) -> torch.Tensor:
    """wd1's ratio-free loss, averaged over groups: raise the likelihood of the rollouts with
    high advantage (weights ``softmax(psi A)``), lower that of those with low advantage
    (``softmax(-psi A)``)."""
    adv = _groups(advantages.float(), group_size)
    logp = _groups(sequence_logps, group_size)
    positive = torch.softmax(psi * adv, dim=1)
    negative = torch.softmax(-psi * adv, dim=1)
    return ((negative - positive) * logp).sum(dim=1).mean()
