"""Scheduled sampling (Diffusion of Thoughts): train on noisy inputs built from the model's own
predictions, so that it learns to go on from its own mistakes.

DoT keeps the gold x0 with probability p_gold(i) = (1 - min_prob) * (S - i) / S + min_prob at
training step i (1 at the start, ``min_prob`` after ``ramp_steps``; DoT uses min_prob = 0.95).
Otherwise the row's x0 is replaced by what the model itself produces when sampling from
t = 1 down to the row's noise level t.

For masked diffusion that is: start from the row with its whole noisable region masked, and
let the model commit, by confidence (greedy tokens, most confident positions first), the
share 1 - p(t) of the region that is clean at level t, spread over up to ``sampler_steps``
forward passes (DoT's 16-step sampler). The committed tokens are the model's, right or wrong;
the rest stays masked. The loss then asks for the gold tokens at the masked positions as
usual, so the targets stay gold. Rows that would keep nothing clean (t near 1) are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlm.config import ConfigError
from dlm.sampling.policies import select_top_k

__all__ = ["ScheduledSampling", "own_prediction_inputs"]


@dataclass(frozen=True)
class ScheduledSampling:
    """When and how often rows are rebuilt from the model's own predictions."""

    min_prob: float
    ramp_steps: int
    sampler_steps: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_prob <= 1.0:
            raise ConfigError(
                f"diffusion.scheduled_min_prob must lie in [0, 1]; got {self.min_prob}"
            )
        if self.ramp_steps < 1 or self.sampler_steps < 1:
            raise ConfigError(
                "diffusion.scheduled_ramp_steps and diffusion.scheduled_sampler_steps must be "
                f">= 1; got {self.ramp_steps} and {self.sampler_steps}"
            )

    def gold_prob(self, step: int) -> float:
        """p_gold at training step ``step``: 1 at step 0, ``min_prob`` from ``ramp_steps`` on."""
        progress = min(max(step, 0) / self.ramp_steps, 1.0)
        return 1.0 - (1.0 - self.min_prob) * progress

    def rows_to_replace(self, batch_size: int, step: int, device: torch.device) -> torch.Tensor:
        """(B,) bool: each row independently with probability 1 - p_gold(step)."""
        return torch.rand(batch_size, device=device) >= self.gold_prob(step)


@torch.no_grad()
def own_prediction_inputs(
    model,
    input_ids: torch.Tensor,
    noisable: torch.Tensor,
    attention_mask: torch.Tensor | None,
    mask_prob: torch.Tensor,
    mask_token_id: int,
    sampler_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy inputs at the rows' levels built from the model's own decoding, and their masks.

    ``mask_prob`` is (B,): the share of each row's noisable region left masked. Returns the
    (B, L) inputs (the model's committed tokens, [MASK] elsewhere in the region, the clean
    prompt outside it) and the (B, L) bool mask of the masked positions.
    """
    canvas = input_ids.masked_fill(noisable, mask_token_id)
    region = noisable.sum(1)
    keep = torch.round((1.0 - mask_prob.float()) * region).long().clamp(min=0)
    committed = torch.zeros_like(keep)
    for s in range(1, sampler_steps + 1):
        goal = keep * s // sampler_steps
        need = goal - committed
        if int(need.max()) <= 0:
            continue
        logits = model(canvas, attention_mask)
        confidence, tokens = logits.float().softmax(-1).max(-1)
        still_masked = (canvas == mask_token_id) & noisable
        chosen = select_top_k(confidence, still_masked, need)
        canvas = torch.where(chosen, tokens, canvas)
        committed = committed + chosen.sum(1)
    masked = (canvas == mask_token_id) & noisable
    return canvas, masked
