"""Commit rules: how many of the eligible masked positions a step commits.

* ``schedule``: a fixed count per row from the noise schedule (``schedule.commit_counts``),
  the top ones by the policy's score; everything left on the block's last step.
* ``threshold`` (Fast-dLLM): every position whose proposal probability is at least tau (as
  Fast-dLLM's ``>=``), and always each row's best-scored position, so every step makes progress.
* ``factor`` (Fast-dLLM's later rule): rank positions by probability; rank r (from 1) is
  committed iff its probability is at least 1 - factor / (r + 1); rank 1 always.

The step count of ``threshold`` and ``factor`` adapts: a block is filled when it is filled.
"""

from __future__ import annotations

import torch

from .policies import select_top_k

__all__ = ["threshold_commit", "factor_commit"]


def threshold_commit(
    scores: torch.Tensor, confidence: torch.Tensor, eligible: torch.Tensor, threshold: float
) -> torch.Tensor:
    """(B, N) bool: the best-scored eligible position of each row, plus all at or above ``threshold``."""
    best = select_top_k(scores, eligible, None, kmax=1)
    return best | (eligible & (confidence >= threshold))


def factor_commit(confidence: torch.Tensor, eligible: torch.Tensor, factor: float) -> torch.Tensor:
    """(B, N) bool: ranks accepted by the factor rule among eligible positions."""
    conf = confidence.float().masked_fill(~eligible, float("-inf"))
    ordered, order = torch.sort(conf, dim=1, descending=True)
    rank = torch.arange(1, conf.shape[1] + 1, device=conf.device, dtype=conf.dtype)
    accept = ordered >= 1.0 - factor / (rank + 1.0)
    accept[:, 0] = True
    accept &= torch.isfinite(ordered)
    return torch.zeros_like(eligible).scatter(1, order, accept) & eligible
