"""A deterministic, resumable batch order that splits each global batch across processes.

Each epoch is a permutation drawn from (seed, epoch). A global batch is ``batch_size *
num_processes`` consecutive indices of it; process r takes every num_processes-th of them.
The position (epoch, offset) is the whole state, so a resumed run reads exactly the batches an
uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .files import DataError

__all__ = ["BatchOrder"]


@dataclass
class BatchOrder:
    num_examples: int
    batch_size: int  # per process
    seed: int = 0
    num_processes: int = 1
    process_index: int = 0
    epoch: int = 0
    offset: int = 0

    def __post_init__(self) -> None:
        if self.global_batch > self.num_examples:
            raise DataError(
                f"the training set has {self.num_examples} examples, fewer than one global batch of "
                f"{self.global_batch}; lower optim.batch_size or add data"
            )
        self._perm: torch.Tensor | None = None
        self._perm_epoch = -1

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.num_processes

    def _permutation(self) -> torch.Tensor:
        if self._perm_epoch != self.epoch:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            self._perm = torch.randperm(self.num_examples, generator=gen)
            self._perm_epoch = self.epoch
        return self._perm

    def next_indices(self) -> torch.Tensor:
        """This process's indices for the next batch."""
        if self.offset + self.global_batch > self.num_examples:
            self.epoch += 1
            self.offset = 0
        chunk = self._permutation()[self.offset : self.offset + self.global_batch]
        self.offset += self.global_batch
        return chunk[self.process_index :: self.num_processes]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
