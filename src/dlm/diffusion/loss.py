"""The masked-diffusion loss: weighted cross-entropy over masked tokens.

L = sum_{b, n masked} w_{b,n} v_{b,n} CE_{b,n} / (number of masked tokens in the batch)

where w comes from ``weights.loss_weights`` and v is MGDM's optional token reweighting.
Logits must already be aligned with the tokens they predict (``DiffusionLM`` applies the
shift), and are upcast to float32 for the cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .weights import token_reweighting

__all__ = ["MaskedLoss", "masked_diffusion_loss", "token_cross_entropy"]


@dataclass
class MaskedLoss:
    """The loss to optimise plus the quantities worth logging."""

    loss: torch.Tensor  # scalar, differentiable
    ce: torch.Tensor  # scalar: unweighted mean CE over masked tokens (detached)
    num_masked: torch.Tensor  # scalar count (a tensor, so the loss needs no host sync)


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-position cross-entropy (B, L) in float32."""
    b, length, v = logits.shape
    ce = F.cross_entropy(
        logits.reshape(b * length, v).float(), targets.reshape(-1), reduction="none"
    )
    return ce.view(b, length)


def masked_diffusion_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    weights: torch.Tensor,
    *,
    token_reweight: tuple[float, float] | None = None,
) -> MaskedLoss:
    """Weighted masked cross-entropy normalised by the number of masked tokens.

    Args:
        logits: (B, L, V) aligned logits.
        targets: (B, L) clean tokens.
        masked: (B, L) bool, positions that were masked (the only ones that carry loss).
        weights: (B, L) per-token weights (zero where not masked is fine but not required).
        token_reweight: ``(alpha, beta)`` for MGDM's focal reweighting, or None.
    """
    masked = masked.bool()
    num_masked = masked.sum()
    ce = token_cross_entropy(logits, targets)
    weighted = ce * weights.to(ce.dtype)
    if token_reweight is not None:
        alpha, beta = token_reweight
        weighted = weighted * token_reweighting(ce, alpha, beta)
    denom = num_masked.clamp(min=1)
    loss = torch.where(masked, weighted, torch.zeros_like(weighted)).sum() / denom
    mean_ce = (torch.where(masked, ce, torch.zeros_like(ce)).sum() / denom).detach()
    return MaskedLoss(loss=loss, ce=mean_ce, num_masked=num_masked)
