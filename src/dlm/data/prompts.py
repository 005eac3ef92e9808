"""Prompts in and answers out, as the sampler takes and gives them.

``batch_prompts`` encodes prompt texts as the training data lays them out (the text plus
[SEP]) and left-pads them into one (B, P) batch with its attention mask; ``left_pad_ids`` is
the padding itself for rows that are already ids; ``decode_answers`` turns generated regions
back into answer texts (special tokens and surrounding space dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase

from .sequences import encode_prompts

__all__ = ["batch_prompts", "decode_answers", "left_pad_ids"]


def left_pad_ids(rows: Sequence[Sequence[int]], fill: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, P) ids with every row right-aligned after ``fill`` padding, and the (B, P) mask
    (1 = real token)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for row, seq in enumerate(rows):
        if len(seq):
            ids[row, width - len(seq) :] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def batch_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (B, P) prompt ids and their attention mask."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return left_pad_ids(encode_prompts(tokenizer, prompts), pad)


def decode_answers(
    tokenizer: PreTrainedTokenizerBase, generated: torch.Tensor, *, strip: bool = True
) -> list[str]:
    """The answer text of each generated row (special tokens dropped; stripped of surrounding
    space unless ``strip`` is off, as code continuing an indented prompt needs)."""
    texts = [tokenizer.decode(row, skip_special_tokens=True) for row in generated.tolist()]
    return [t.strip() for t in texts] if strip else texts
