"""Step schedules of the sampler: the time grid and how many tokens each step commits.

The time grid is Dream's ``linspace(1, eps, steps + 1)`` (step i goes from t_i to s = t_{i+1}).
Two count rules (``SamplerSettings.schedule``):

* ``linear`` (dlm's default): a row that starts a block with n masked positions commits
  n // steps per step and one more on the first n % steps steps (LLaDA's split), so
  ``steps == n`` commits exactly one token per step, every row on its own count. The grid is
  float64 (the ``random`` policy's reveal probability 1 - s/t).
* ``dream`` (Dream's ``diffusion_generate``): at step i the count is
  ``int(M * (1 - s/t))`` in float32, where M is the batch's *mean* number of masks still in the
  block and the grid is float32; the last step takes everything left. Steps can commit zero
  (16 tokens in 16 steps: the first step gives 16 * 0.0624 = 0.999 -> 0) and others two.
"""

from __future__ import annotations

import torch

__all__ = ["commit_counts", "dream_count", "dream_ratios", "time_grid"]


def time_grid(steps: int, eps: float = 1e-3, dtype: torch.dtype = torch.float64, device=None):
    """``steps + 1`` times from 1 down to ``eps``."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    return torch.linspace(1.0, eps, steps + 1, dtype=dtype, device=device)


def commit_counts(num_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) tokens to commit at each step for rows with ``num_masked`` masks (linear)."""
    num_masked = num_masked.long()
    base = num_masked // steps
    remainder = num_masked % steps
    step_index = torch.arange(steps, device=num_masked.device)
    return base.unsqueeze(1) + (step_index.unsqueeze(0) < remainder.unsqueeze(1)).long()


def dream_ratios(steps: int, eps: float, device=None) -> torch.Tensor:
    """(steps,) float32 ``1 - s/t`` of Dream's grid, as Dream computes it (float32 throughout)."""
    grid = time_grid(steps, eps, torch.float32, device)
    return 1 - grid[1:] / grid[:-1]


def dream_count(masked: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Dream's count ``int(mean masks * ratio)`` for a (B, n) mask, as a 0-d int64 tensor.

    The mean is int64 sum / batch size (float32), the product float32, truncated as ``int()``.
    """
    mean = masked.sum() / masked.shape[0]
    return (mean.float() * ratio).long()
