"""Block schedules: the whole generation region at once, or semi-autoregressive blocks.

With ``block_length`` set, the region is cut into consecutive blocks (the last may be
shorter) that are filled left to right, as LLaDA's ``generate``: only the current block's
masks may be committed, and the steps are split over the blocks that have positions to fill
(earlier blocks get one more when the split is uneven).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dlm.errors import SettingsError

__all__ = ["Block", "plan_blocks"]


@dataclass(frozen=True)
class Block:
    index: int
    start: int  # first canvas column of the block
    end: int  # one past its last column
    steps: int  # steps of the fixed schedule inside it


def plan_blocks(
    prompt_length: int,
    max_new_tokens: int,
    block_length: int | None,
    steps: int,
    free: torch.Tensor | None = None,
) -> list[Block]:
    """The blocks of a generation region of ``max_new_tokens`` starting at ``prompt_length``.

    ``free`` (B, N) marks the positions the sampler fills; a block with none in any row (a
    pinned suffix, say) gets no steps, and the steps go to the blocks that need them.
    """
    if block_length is None or block_length >= max_new_tokens:
        return [Block(0, prompt_length, prompt_length + max_new_tokens, steps)]
    if block_length < 1:
        raise SettingsError(f"block_length must be at least 1; got {block_length}")
    count = math.ceil(max_new_tokens / block_length)
    spans = [(i * block_length, min((i + 1) * block_length, max_new_tokens)) for i in range(count)]
    active = [free is None or bool(free[:, lo:hi].any()) for lo, hi in spans]
    n_active = max(sum(active), 1)
    if steps < n_active:
        raise SettingsError(
            f"steps ({steps}) must be at least the number of blocks to fill ({n_active} blocks of "
            f"{block_length} in {max_new_tokens} tokens); raise steps or block_length"
        )
    base, extra = divmod(steps, n_active)
    blocks, rank = [], 0
    for i, (lo, hi) in enumerate(spans):
        share = 0
        if active[i]:
            share = base + (1 if rank < extra else 0)
            rank += 1
        blocks.append(Block(i, prompt_length + lo, prompt_length + hi, share))
    return blocks
