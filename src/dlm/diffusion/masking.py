"""Forward corruption: replace tokens of the noisable region by [MASK].

Only positions where ``noisable`` is True can be masked: the prompt of an SFT example, the
source of a puzzle or a chess board stay clean whatever t is. Complementary pairs (Dream-Coder's
coupled masks, DiffuCoder's coupled-GRPO) mask disjoint halves of the noisable region with one
shared uniform draw, so every noisable token is masked in exactly one of the two copies.
"""

from __future__ import annotations

import torch

__all__ = ["mask_tokens", "complementary_masks", "apply_mask"]


def apply_mask(input_ids: torch.Tensor, masked: torch.Tensor, mask_token_id: int) -> torch.Tensor:
    """A copy of ``input_ids`` with ``mask_token_id`` wherever ``masked`` is True."""
    return torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)


def mask_tokens(
    input_ids: torch.Tensor,
    noisable: torch.Tensor,
    mask_prob: torch.Tensor,
    mask_token_id: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask each noisable token independently with its row's probability.

    Args:
        input_ids: (B, L) clean tokens.
        noisable: (B, L) bool, where masking is allowed.
        mask_prob: (B,) per-row masking probability (``schedule.mask_prob(t)``).
    Returns:
        ``(noisy_ids, masked)`` where ``masked`` is the (B, L) bool mask that was applied.
    """
    if input_ids.shape != noisable.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and noisable {tuple(noisable.shape)} differ in shape"
        )
    u = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    masked = noisable.bool() & (u < mask_prob.to(u.dtype).unsqueeze(1))
    return apply_mask(input_ids, masked, mask_token_id), masked


def complementary_masks(
    noisable: torch.Tensor,
    t: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two disjoint masks covering the noisable region, at times t and 1 - t.

    One uniform u per position: the first copy masks ``u < t``, the second ``u >= t``.
    Returns ``(mask_a, t_a, mask_b, t_b)``.
    """
    u = torch.rand(noisable.shape, generator=generator, device=noisable.device)
    below = u < t.to(u.dtype).unsqueeze(1)
    noisable = noisable.bool()
    return noisable & below, t, noisable & ~below, 1.0 - t
