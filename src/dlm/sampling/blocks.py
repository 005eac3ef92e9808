"""Block schedules: the whole generation region at once, or semi-autoregressive blocks.

With ``block_length`` set, the region is cut into consecutive blocks (the last may be
shorter) that are filled left to right, as LLaDA's ``generate``: only the current block's
masks may be committed. The plan is per row: each row splits ``steps`` over *its own* blocks
that have positions to fill (earlier ones get one more when the split is uneven), so a block
that ``fixed`` pins whole in one row costs that row no steps and the others keep theirs. A
row's plan never depends on its batch mates; the loop runs each block for the most steps any
row takes in it, and a row with fewer commits nothing on the steps past its own.

``by_tokens=True`` splits a row's steps in proportion to the positions each of its blocks has
to fill instead (each active block at least one step). Block-causal canvases use it: their first
block holds the prompt's tail, pinned, so an even split would give that block steps it has no
tokens for and leave the full blocks with fewer steps than tokens.
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
    steps: int  # steps the loop runs in it: the most any row takes
    # each row's own steps in it (0: the row has nothing to fill there); empty when every row
    # that has something to fill takes ``steps``
    row_steps: tuple[int, ...] = ()

    @property
    def uniform(self) -> bool:
        """Every row with positions to fill in the block takes the block's ``steps``."""
        return not self.row_steps


def plan_blocks(
    prompt_length: int,
    max_new_tokens: int,
    block_length: int | None,
    steps: int,
    free: torch.Tensor | None = None,
    by_tokens: bool = False,
) -> list[Block]:
    """The blocks of a generation region of ``max_new_tokens`` starting at ``prompt_length``.

    ``free`` (B, N) marks the positions the sampler fills. Each row splits ``steps`` over its
    own blocks with a free position (a pinned suffix, say, gets none of that row's steps);
    one host read gives which blocks those are. Without ``free`` every row fills every block.
    """
    if block_length is None or block_length >= max_new_tokens:
        return [Block(0, prompt_length, prompt_length + max_new_tokens, steps)]
    if block_length < 1:
        raise SettingsError(f"block_length must be at least 1; got {block_length}")
    count = math.ceil(max_new_tokens / block_length)
    spans = [(i * block_length, min((i + 1) * block_length, max_new_tokens)) for i in range(count)]
    if free is None:
        sizes = [[hi - lo for lo, hi in spans]]
    else:
        pad = count * block_length - max_new_tokens
        padded = torch.nn.functional.pad(free, (0, pad)) if pad else free
        sizes = padded.reshape(free.shape[0], count, block_length).sum(-1).tolist()  # one read
    active = [[n > 0 for n in row] for row in sizes]
    if by_tokens:
        shares = [_split_by_tokens(steps, row) for row in sizes]
    else:
        shares = [_split(steps, row) for row in active]
    widest = max(range(len(active)), key=lambda r: sum(active[r]))
    n_active = sum(active[widest])
    if steps < n_active:
        where = "" if len(active) == 1 else f" in row {widest}"
        raise SettingsError(
            f"steps ({steps}) must be at least the number of blocks to fill ({n_active} blocks of "
            f"{block_length} in {max_new_tokens} tokens{where}); raise steps or block_length"
        )
    blocks = []
    for i, (lo, hi) in enumerate(spans):
        row_steps = [share[i] for share in shares]
        most = max(row_steps)
        uniform = all(k in (0, most) for k in row_steps)  # rows with nothing here do not count
        blocks.append(
            Block(i, prompt_length + lo, prompt_length + hi, most, () if uniform else tuple(row_steps))
        )
    return blocks


def _split(steps: int, active: list[bool]) -> list[int]:
    """One row's steps per block: ``steps`` over its active blocks, earlier ones first."""
    base, extra = divmod(steps, max(sum(active), 1))
    shares, rank = [], 0
    for is_active in active:
        share = 0
        if is_active:
            share = base + (1 if rank < extra else 0)
            rank += 1
        shares.append(share)
    return shares


def _split_by_tokens(steps: int, sizes: list[int]) -> list[int]:
    """One row's steps per block in proportion to its positions to fill (largest remainder,
    earlier blocks first on ties), at least one per block with any: ``steps`` equal to the
    positions gives each block one step per position."""
    active = [n > 0 for n in sizes]
    total = sum(sizes)
    if total == 0 or steps <= sum(active):
        return _split(steps, active)
    exact = [steps * n / total for n in sizes]
    shares = [int(x) for x in exact]
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: steps - sum(shares)]:
        shares[i] += 1
    for i, is_active in enumerate(active):  # a small block still gets its step
        if is_active and shares[i] == 0:
            shares[max(range(len(shares)), key=lambda j: shares[j])] -= 1
            shares[i] = 1
    return shares
