"""Dream-Coder's random truncation of a training batch's padded tail.

SFT rows are ``prompt [SEP] response [EOS] [PAD]...`` up to ``seq_len`` and every pad is a
target (the model learns where answers end). With a long ``seq_len`` and short responses the
pads dominate the loss and the model learns to end early. Dream-Coder (``perbatch_cutoff_type
= random_with_input_pad``) cuts every batch at a random width, so pads are still seen but in a
share that varies from batch to batch.

dlm's rule: the batch's width is drawn uniformly from ``[longest content, seq_len]``, where a
row's content is its prompt, response and EOS (the last ``loss_mask`` position). Every response
therefore stays whole, with its EOS; only padding is cut.

Deviation from the reference, on purpose: Dream-Coder left-pads the prompts to a common width
and truncates every response to the length of one response drawn from the batch, which cuts
the longer responses (and their EOS) of that batch. dlm never cuts a response: a truncated
response would teach the model that an answer may stop without its end token.
"""

from __future__ import annotations

import torch

from .sequences import SequenceData

__all__ = ["content_lengths", "truncate_batch", "random_truncation"]


def content_lengths(batch: SequenceData) -> torch.Tensor:
    """(B,) the width each row needs: up to its last ``loss_mask`` position (its EOS), or the
    whole row when it marks none (slot templates, packed documents)."""
    length = batch.seq_len
    positions = torch.arange(1, length + 1, device=batch.loss_mask.device)
    last = (batch.loss_mask.long() * positions).amax(dim=1)
    return torch.where(batch.loss_mask.any(dim=1), last, torch.full_like(last, length))


def truncate_batch(batch: SequenceData, width: int) -> SequenceData:
    """The first ``width`` columns of every tensor of ``batch``."""
    if not 1 <= width <= batch.seq_len:
        raise ValueError(f"width must lie in [1, {batch.seq_len}]; got {width}")
    mask = batch.attention_mask
    return SequenceData(
        batch.input_ids[:, :width],
        batch.noisable[:, :width],
        batch.loss_mask[:, :width],
        None if mask is None else mask[:, :width],
        batch.index,
    )


def random_truncation(batch: SequenceData, generator: torch.Generator) -> SequenceData:
    """``batch`` cut at a width drawn uniformly from [longest content, seq_len].

    Call it on the host copy of a batch (the lengths are read back once to pick the width).
    """
    longest = int(content_lengths(batch).max())
    width = int(
        torch.randint(longest, batch.seq_len + 1, (1,), generator=generator, device="cpu")
    )
    return truncate_batch(batch, width)
