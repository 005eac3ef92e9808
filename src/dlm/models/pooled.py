"""Step forwards pooled across canvases of different lengths: a server's step-level batch.

A server runs many sampling runs at once, each on its own one-row canvas, at its own step of
its own block. ``PooledStepForward`` is the step forward such a run calls: it plans which
columns the step reads as ``FullStepForward`` does (the shift included), but hands the canvas
and those columns to ``submit`` and waits for the logits, so the forward itself is computed
elsewhere, together with the other runs' (``ragged_step_logits``).

``ragged_step_logits`` is that forward: every row is left-padded into one union batch, with
position ids from the cumulative sum of the padding mask and padded keys masked (as
``attention.build_attention`` does for a ragged batch), so each row sees exactly the
positions and keys it sees alone; the backbone's body runs once and the LM head only at each
row's own columns (``DiffusionLM.row_head_logits``). A row's logits equal its one-row forward
up to the floating point of a different batch shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from .attention import build_attention
from .cache import _first_real, _Reader

if TYPE_CHECKING:
    from .diffusion_lm import DiffusionLM

__all__ = ["PooledStepForward", "ragged_step_logits"]

#: ``submit(tokens (1, L), columns (K,))`` -> raw logits (1, K, V) of those output columns.
Submit = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PooledStepForward:
    """A one-row canvas's step forward whose computation ``submit`` does, batched elsewhere."""

    def __init__(self, model: DiffusionLM, length: int, submit: Submit) -> None:
        model.check_length(length)
        self.device = model.device
        self.submit = submit
        self.reader = _Reader(model.config.shift, _first_real(None, length, 1, self.device))

    def start_block(self, lo: int, hi: int) -> None:
        self.reader.plan(lo, hi, 0, self.device)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.reader.read(self.submit(tokens, self.reader.keep))


def ragged_step_logits(
    model: DiffusionLM, rows: Sequence[tuple[torch.Tensor, torch.Tensor]]
) -> list[torch.Tensor]:
    """One forward over ``rows`` of (tokens (1, L_r), output columns (K_r,)); returns each row's
    raw logits (1, K_r, V) at its columns, as its own one-row forward gives them."""
    device = model.device
    lengths = [int(tokens.shape[-1]) for tokens, _ in rows]
    width = max(lengths)
    batch = len(rows)
    fill = model.config.fill_token_id
    ids = torch.full((batch, width), fill, dtype=torch.long, device=device)
    valid = torch.zeros(batch, width, dtype=torch.bool, device=device)
    kmax = max(int(columns.numel()) for _, columns in rows)
    cols = torch.zeros(batch, kmax, dtype=torch.long, device=device)
    for r, ((tokens, columns), length) in enumerate(zip(rows, lengths, strict=True)):
        offset = width - length
        ids[r, offset:] = tokens.reshape(-1)
        valid[r, offset:] = True
        k = int(columns.numel())
        cols[r, :k] = columns + offset
        cols[r, k:] = width - 1  # read and dropped
    padded = any(length != width for length in lengths)
    mode = "bidirectional" if model.config.attention == "annealed" else model.config.attention
    att = build_attention(
        mode, valid if padded else None, width, block_size=model.config.block_size, device=device
    )
    model.set_causal(att.causal)
    logits = model.row_head_logits(ids, model.backend_mask(att.attention_mask), att.position_ids, cols)
    return [
        logits[r : r + 1, : int(columns.numel())] for r, (_, columns) in enumerate(rows)
    ]
