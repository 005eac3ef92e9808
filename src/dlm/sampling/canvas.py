"""The canvas a sampler works on: left-padded prompts followed by a masked generation region.

Ragged prompts are moved to the right end of the prompt block (left padding), so every row's
generation region starts at the same column. ``fixed`` pins tokens anywhere in the generation
region (infilling: a suffix, a middle, any pattern); pinned positions are never masked.

A block-causal model (``block_size`` B) is sampled on a *block-aligned* canvas, so that the
generation region starts at a block boundary of every row (its blocks are then the same
columns in every row, and finished blocks can be cached exactly): each row keeps its whole
prompt blocks in the prompt part (left-padded by whole blocks) and moves the rest of its
prompt, ``lead`` = p mod B tokens, into the start of the region as pinned tokens; its
``max_new_tokens`` masks follow, and the columns after them (up to the longest lead of the
batch) are padding hidden from attention. ``Canvas.standard`` maps such a canvas back to the
usual layout (left-padded prompt, then the ``max_new_tokens`` region), which is what
``generate``, ``stream`` and the server return; a row alone and in a ragged batch sees the same
positions, blocks and steps.

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

__all__ = ["BlockAlignment", "Canvas", "block_aligned", "build_canvas", "left_pad", "trim_after_eos"]


@dataclass
class BlockAlignment:
    """How a block-aligned canvas maps to the usual layout (see the module docstring)."""

    lead: torch.Tensor  # (B,) prompt tokens each row moved into the region
    prompt_lengths: torch.Tensor  # (B,) real prompt tokens per row
    prompt_width: int  # P of the usual layout
    new_tokens: int  # N, the generation region of the usual layout
    origin: int  # the aligned canvas's prompt part: usual column i = aligned i - origin + P - lead


@dataclass
class Canvas:
    tokens: torch.Tensor  # (B, P + N)
    attention_mask: torch.Tensor | None  # (B, P + N) or None when nothing is padded
    prompt_length: int  # P: the generation region starts here
    free: torch.Tensor  # (B, N) bool: generation positions the sampler decides
    alignment: BlockAlignment | None = None  # a block-aligned canvas (block-causal models)

    @property
    def new_tokens(self) -> int:
        """The generation region's length in the usual layout (``max_new_tokens``)."""
        return self.free.shape[1] if self.alignment is None else self.alignment.new_tokens

    @property
    def standard_prompt_length(self) -> int:
        """P of the usual layout (``standard``)."""
        return self.prompt_length if self.alignment is None else self.alignment.prompt_width

    def standard(self, tokens: torch.Tensor, fill: int) -> torch.Tensor:
        """(B, P + N) in the usual layout: the left-padded prompt, then the region."""
        a = self.alignment
        if a is None:
            return tokens
        columns = torch.arange(a.prompt_width + a.new_tokens, device=tokens.device)
        source = columns + a.origin - a.prompt_width + a.lead[:, None]
        picked = tokens.gather(1, source.clamp(0, tokens.shape[1] - 1))
        real = columns >= (a.prompt_width - a.prompt_lengths)[:, None]
        return torch.where(real, picked, torch.full_like(picked, fill))

    def standard_region(self, region: torch.Tensor) -> torch.Tensor:
        """(B, N) of a (B, region) tensor: each row's own ``max_new_tokens`` columns."""
        a = self.alignment
        if a is None:
            return region
        index = a.lead[:, None] + torch.arange(a.new_tokens, device=region.device)
        return region.gather(1, index)


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
    block_size: int | None = None,
) -> Canvas:
    """Prompt block + ``max_new_tokens`` masks, with ``fixed`` (B, N) ids >= 0 pinned;
    block-aligned for a block-causal model's ``block_size``."""
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
    canvas = Canvas(tokens, full_mask, prompt.shape[1], free)
    if block_size is not None and block_size > 1:
        return block_aligned(canvas, block_size, pad_token_id)
    return canvas


def block_aligned(canvas: Canvas, block_size: int, pad_token_id: int) -> Canvas:
    """The block-aligned form of a usual canvas (see the module docstring); one host read."""
    tokens, p, n = canvas.tokens, canvas.prompt_length, canvas.free.shape[1]
    batch, device = tokens.shape[0], tokens.device
    if canvas.attention_mask is None:
        lengths = torch.full((batch,), p, dtype=torch.long, device=device)
    else:
        lengths = canvas.attention_mask[:, :p].long().sum(1)
    whole = lengths // block_size * block_size
    lead = lengths - whole
    origin, most = (int(v) for v in torch.stack([whole.max(), lead.max()]).tolist())
    width = origin + most + n
    # aligned column j of row r holds usual column j - origin + p - lead_r
    usual = torch.arange(width, device=device)[None] - origin + p - lead[:, None]
    real = (usual >= (p - lengths)[:, None]) & (usual < p + n)
    picked = tokens.gather(1, usual.clamp(0, p + n - 1))
    aligned = torch.where(real, picked, torch.full_like(picked, pad_token_id))
    k = usual[:, origin:] - p  # the usual region index of each aligned region column
    inside = (k >= 0) & (k < n)
    free = inside & canvas.free.gather(1, k.clamp(0, n - 1))
    mask = None if bool(real.all()) else real.long()
    alignment = BlockAlignment(lead, lengths, p, n, origin)
    return Canvas(aligned, mask, origin, free, alignment)


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
