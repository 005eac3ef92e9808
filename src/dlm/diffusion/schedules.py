"""Noise schedules: how much of the noisable region is masked at diffusion time t.

Every schedule maps a time tensor ``t`` in (0, 1] to ``alpha(t)``, the probability that a token
stays clean, and to the ELBO weight ``-alpha'(t) / (1 - alpha(t))``. The discrete schedule of
MGDM and DiffuSearch represents its integer step k in {1..T} as t = k / T, so one tensor type
serves all schedules and the integer step is ``round(t * T)``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

__all__ = ["NoiseSchedule", "LinearSchedule", "CosineSchedule", "DiscreteSchedule", "make_schedule"]


class NoiseSchedule(ABC):
    """A masking schedule: alpha(t) = P(token clean at time t), decreasing from 1 to 0."""

    name: str = ""
    num_steps: int | None = None  # T for discrete schedules, None for continuous ones

    @abstractmethod
    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a token is still clean at time t."""

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a noisable token is replaced by [MASK] at time t."""
        return 1.0 - self.alpha(t)

    @abstractmethod
    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        """The weight of the masked cross-entropy in the negative ELBO at time t."""


class LinearSchedule(NoiseSchedule):
    """alpha(t) = 1 - t (MDLM, DiffuLLaMA, Dream): the ELBO weight is 1/t."""

    name = "linear"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - t

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 / t


class CosineSchedule(NoiseSchedule):
    """alpha(t) = cos(pi t / 2): masks fewer tokens early on than the linear schedule.

    ELBO weight: -alpha'(t) / (1 - alpha(t)) = (pi/2) sin(pi t / 2) / (1 - cos(pi t / 2)).
    """

    name = "cosine"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return torch.cos(0.5 * math.pi * t)

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        half = 0.5 * math.pi * t
        return 0.5 * math.pi * torch.sin(half) / (1.0 - torch.cos(half))


class DiscreteSchedule(NoiseSchedule):
    """MGDM / DiffuSearch: integer step k in {1..T}, mask probability k / T.

    Times are carried as t = k / T. The ELBO weight is 1/k, as MGDM's ``original`` weighting.
    """

    name = "discrete"

    def __init__(self, num_steps: int) -> None:
        if num_steps < 1:
            raise ValueError(f"a discrete schedule needs at least one step; got T={num_steps}")
        self.num_steps = int(num_steps)

    def step_index(self, t: torch.Tensor) -> torch.Tensor:
        """The integer step k = round(t * T) in {1..T}."""
        return torch.round(t * self.num_steps).clamp(1, self.num_steps)

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.step_index(t) / self.num_steps

    def elbo_weight(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 / self.step_index(t)


def make_schedule(name: str, num_steps: int | None = None) -> NoiseSchedule:
    """Build a schedule by name: ``linear``, ``cosine`` or ``discrete`` (needs ``num_steps``)."""
    if name == "linear":
        return LinearSchedule()
    if name == "cosine":
        return CosineSchedule()
    if name == "discrete":
        if num_steps is None:
            raise ValueError(
                "the discrete schedule needs num_steps (T), e.g. diffusion.num_steps=20"
            )
        return DiscreteSchedule(num_steps)
    raise ValueError(f"unknown noise schedule {name!r}; choose one of: linear, cosine, discrete")
