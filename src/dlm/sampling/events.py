"""What a sampling step reports: one event per step, for streaming and for history."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["StepEvent"]


@dataclass
class StepEvent:
    """The state after one step of the sampler.

    ``committed`` marks the generation-region positions that received a token this step
    (padding written after an EOS included); ``region`` holds the whole generation region
    after the step; ``nfe`` counts forward passes so far (a step that reused the previous
    logits adds none).
    """

    step: int
    block: int
    committed: torch.Tensor  # (B, N) bool
    region: torch.Tensor  # (B, N) token ids, [MASK] where still masked
    nfe: int

    def positions(self, row: int) -> list[int]:
        """The region positions committed in ``row`` at this step."""
        return self.committed[row].nonzero().flatten().tolist()

    def tokens(self, row: int) -> list[int]:
        """The tokens committed in ``row`` at this step, in position order."""
        return self.region[row][self.committed[row]].tolist()
