"""Step schedules of the sampler: the time grid and how many tokens each step commits.

The time grid is Dream's ``linspace(1, eps, steps + 1)`` (step i goes from t_i to s = t_{i+1}),
kept in float64. For the scored policies, the number committed per row follows the linear
schedule exactly: a row that starts with n masked positions commits n // steps per step and one
more on the first n % steps steps (LLaDA's split), so ``steps == n`` commits exactly one token
per step. Dream's float32 ``int(n (1 - s/t))`` can commit zero on one step and two on another.
"""

from __future__ import annotations

import torch

__all__ = ["time_grid", "commit_counts"]


def time_grid(steps: int, eps: float = 1e-3) -> torch.Tensor:
    """``steps + 1`` times from 1 down to ``eps`` (float64)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    return torch.linspace(1.0, eps, steps + 1, dtype=torch.float64)


def commit_counts(num_masked: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) tokens to commit at each step for rows with ``num_masked`` masks."""
    num_masked = num_masked.long()
    base = num_masked // steps
    remainder = num_masked % steps
    step_index = torch.arange(steps, device=num_masked.device)
    return base.unsqueeze(1) + (step_index.unsqueeze(0) < remainder.unsqueeze(1)).long()
