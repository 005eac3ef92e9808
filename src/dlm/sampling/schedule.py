"""Step schedules of the sampler: the time grid and how many tokens each step commits.

The time grid is Dream's ``linspace(1, eps, steps + 1)`` (step i goes from t_i to s = t_{i+1}).
Two count rules (``SamplerSettings.schedule``):

* ``linear`` (dlm's default): a row that starts a block with n masked positions commits
  n // steps per step and one more on the first n % steps steps (LLaDA's split), so
  ``steps == n`` commits exactly one token per step, every row on its own count. The grid is
  float64 (the ``random`` policy's reveal probability 1 - s/t).
* ``dream`` (Dream's ``diffusion_generate``): at step i the count is
  ``int(M * (1 - s/t))`` in float32, where M is the number of masks still in the row's block
  and the grid is float32; the last step takes everything left. Steps can commit zero
  (16 tokens in 16 steps: the first step gives 16 * 0.0624 = 0.999 -> 0) and others two.
  Dream takes M as the batch's *mean*; in Dream every row holds the same number of masks, so
  the two agree there, and dlm's per-row M keeps a row independent of its batch mates when
  pinned tokens or EOS stopping leave rows with different numbers of masks.

A row's step count in a block is its own (``blocks.plan_blocks``), so ``commit_counts`` takes
one per row.
"""

from __future__ import annotations

import torch

__all__ = ["commit_counts", "dream_count", "dream_ratios", "time_grid"]


def time_grid(steps: int, eps: float = 1e-3, dtype: torch.dtype = torch.float64, device=None):
    """``steps + 1`` times from 1 down to ``eps``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    return torch.linspace(1.0, eps, steps + 1, dtype=dtype, device=device)


def commit_counts(
    num_masked: torch.Tensor, steps: int | torch.Tensor, width: int | None = None
) -> torch.Tensor:
    """(B, width) tokens to commit at each step for rows with ``num_masked`` masks (linear).

    ``steps`` is one count for every row or a (B,) tensor of each row's own (at least 1); a
    row commits nothing past its own steps. ``width`` (default ``steps``; needed with a
    tensor, so that nothing is read from the device) is the number of columns.
    """
    num_masked = num_masked.long()
    if width is None:
        if isinstance(steps, torch.Tensor):
            raise ValueError("commit_counts: give width with per-row steps")
        width = steps
    step_index = torch.arange(width, device=num_masked.device).unsqueeze(0)
    if not isinstance(steps, torch.Tensor):
        base, remainder = num_masked // steps, num_masked % steps
        return base.unsqueeze(1) + (step_index < remainder.unsqueeze(1)).long()
    steps = steps.to(num_masked.device).long()
    base, remainder = num_masked // steps, num_masked % steps
    counts = base.unsqueeze(1) + (step_index < remainder.unsqueeze(1)).long()
    return counts * (step_index < steps.unsqueeze(1)).long()


def dream_ratios(steps: int, eps: float, device=None) -> torch.Tensor:
    """(steps,) float32 ``1 - s/t`` of Dream's grid, as Dream computes it (float32 throughout)."""
    grid = time_grid(steps, eps, torch.float32, device)
    return 1 - grid[1:] / grid[:-1]


def dream_count(masked: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Dream's count ``int(masks * ratio)`` for each row of a (B, n) mask: (B,) int64.

    ``ratio`` is one float32 ``1 - s/t`` or a (B,) tensor of each row's own. The count is
    float32 masks times the ratio, truncated as ``int()``; where every row holds M masks this
    is Dream's ``int(mean * ratio)`` exactly (the mean of equal int64 counts is M in float32).
    """
    return (masked.sum(1).float() * ratio).long()
