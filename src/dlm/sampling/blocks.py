"""Block schedules: the whole generation region at once, or semi-autoregressive blocks.

With ``block_length`` set, the region is cut into consecutive blocks (the last may be
shorter) that are filled left to right, as LLaDA's ``generate``: only the current block's
masks may be committed, and the steps are split over the blocks (earlier blocks get one more
when the split is uneven).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Block", "plan_blocks"]


@dataclass(frozen=True)
class Block:
    index: int
    start: int  # first canvas column of the block
    end: int  # one past its last column
    steps: int  # steps of the fixed schedule inside it


def plan_blocks(
    prompt_length: int, max_new_tokens: int, block_length: int | None, steps: int
) -> list[Block]:
    """The blocks of a generation region of ``max_new_tokens`` starting at ``prompt_length``."""
    if block_length is None or block_length >= max_new_tokens:
        return [Block(0, prompt_length, prompt_length + max_new_tokens, steps)]
    if block_length < 1:
        raise ValueError(f"block_length must be at least 1; got {block_length}")
    count = math.ceil(max_new_tokens / block_length)
    if steps < count:
        raise ValueError(
            f"steps ({steps}) must be at least the number of blocks ({count} blocks of {block_length} "
            f"in {max_new_tokens} tokens); raise steps or block_length"
        )
    base, extra = divmod(steps, count)
    blocks = []
    for i in range(count):
        start = prompt_length + i * block_length
        end = min(start + block_length, prompt_length + max_new_tokens)
        blocks.append(Block(i, start, end, base + (1 if i < extra else 0)))
    return blocks
