"""The canvas a sampler works on: left-padded prompts followed by a masked generation region.

Ragged prompts are moved to the right end of the prompt block (left padding), so every row's
generation region starts at the same column. ``fixed`` pins tokens anywhere in the generation
region (infilling: a suffix, a middle, any pattern); pinned positions are never masked.

EOS stopping (the sampler's ``stop_at_eos``) ends a row at an EOS with nothing masked before
it: every free position after that EOS becomes padding, and pinned tokens are always kept, so
the masked gap between an ending EOS and later pinned tokens becomes padding. The sampling loop
writes it as rows end (``loop.finish_rows``), so ``generate`` and ``stream`` end on the same
region; ``trim_after_eos`` is the same rule for a finished canvas (the AR decoder's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlm.errors import DlmUserError

__all__ = ["Canvas", "build_canvas", "left_pad", "trim_after_eos"]


@dataclass
class Canvas:
    tokens: torch.Tensor  # (B, P + N)
    attention_mask: torch.Tensor | None  # (B, P + N) or None when nothing is padded
    prompt_length: int  # P: the generation region starts here
    free: torch.Tensor  # (B, N) bool: generation positions the sampler decides


def left_pad(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Move each row's real tokens to the right end, keeping their order."""
    if attention_mask is None:
        return input_ids, None
    if attention_mask.shape != input_ids.shape:
        raise DlmUserError(
            f"attention_mask {tuple(attention_mask.shape)} must have the shape of input_ids {tuple(input_ids.shape)}"
        )
    order = torch.argsort(attention_mask.long(), dim=1, stable=True)
    mask = attention_mask.gather(1, order).long()
    ids = torch.where(
        mask.bool(), input_ids.gather(1, order), torch.full_like(input_ids, pad_token_id)
    )
    return ids, mask


def build_canvas(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    max_new_tokens: int,
    *,
    mask_token_id: int,
    pad_token_id: int,
    fixed: torch.Tensor | None = None,
) -> Canvas:
    """Prompt block + ``max_new_tokens`` masks, with ``fixed`` (B, N) ids >= 0 pinned."""
    if input_ids.dim() != 2:
        raise DlmUserError(f"input_ids must be (batch, length); got shape {tuple(input_ids.shape)}")
    if max_new_tokens < 1:
        raise DlmUserError(f"max_new_tokens must be at least 1; got {max_new_tokens}")
    batch = input_ids.shape[0]
    prompt, prompt_mask = left_pad(input_ids, attention_mask, pad_token_id)
    region = torch.full(
        (batch, max_new_tokens), mask_token_id, dtype=prompt.dtype, device=prompt.device
    )
    free = torch.ones(batch, max_new_tokens, dtype=torch.bool, device=prompt.device)
    if fixed is not None:
        if fixed.shape != region.shape:
            raise DlmUserError(
                f"fixed must have shape (batch, max_new_tokens) = {tuple(region.shape)}; got "
                f"{tuple(fixed.shape)} (use a negative id for positions the sampler should fill)"
            )
        fixed = fixed.to(region.device)
        pinned = fixed >= 0
        region = torch.where(pinned, fixed.to(region.dtype), region)
        free = ~pinned
    tokens = torch.cat([prompt, region], dim=1)
    full_mask = None
    if prompt_mask is not None and not bool(prompt_mask.bool().all()):
        full_mask = torch.cat([prompt_mask, torch.ones_like(region)], dim=1)
    return Canvas(tokens, full_mask, prompt.shape[1], free)


def trim_after_eos(
    tokens: torch.Tensor,
    start: int,
    eos_token_id: int | None,
    pad_token_id: int,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """Replace everything after the first EOS at or after column ``start`` by padding, except
    the generation-region positions ``keep`` (B, N) marks (pinned tokens are never changed).

    On a canvas with no mask left this is EOS stopping's rule (``loop.finish_rows``)."""
    if eos_token_id is None:
        return tokens
    region = tokens[:, start:]
    is_eos = region == eos_token_id
    after = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    if keep is not None:
        after &= ~keep
    region = region.masked_fill(after, pad_token_id)
    return torch.cat([tokens[:, :start], region], dim=1)
