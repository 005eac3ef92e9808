"""Drawing diffusion times for a training batch: uniform or stratified, with a floor eps.

Continuous schedules draw t = (1 - eps) u + eps so that the 1/t weight stays bounded; the
stratified option places one draw in each of B equal strata of [0, 1) (one shared offset,
rows shuffled), which lowers the variance of the batch loss. The discrete schedule draws the
integer step k uniformly from {1..T} (stratified: evenly spread over the batch) and returns
t = k / T.
"""

from __future__ import annotations

import torch

from .schedules import NoiseSchedule

__all__ = ["sample_times", "DEFAULT_EPS"]

DEFAULT_EPS = 1e-3


def _uniform(
    batch_size: int, stratified: bool, generator: torch.Generator | None, device
) -> torch.Tensor:
    if not stratified:
        return torch.rand(batch_size, generator=generator, device=device)
    offset = torch.rand(1, generator=generator, device=device)
    u = (torch.arange(batch_size, device=device) + offset) / batch_size
    perm = torch.randperm(batch_size, generator=generator, device=device)
    return u[perm]


def sample_times(
    batch_size: int,
    schedule: NoiseSchedule,
    *,
    eps: float = DEFAULT_EPS,
    stratified: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """One time per row, as a float32 tensor of shape (batch_size,).

    Continuous schedules: t in [eps, 1). Discrete schedules: t = k / T with k in {1..T}.
    """
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps must lie in [0, 1); got {eps}")
    u = _uniform(batch_size, stratified, generator, device)
    if schedule.num_steps is not None:
        steps = schedule.num_steps
        k = torch.floor(u * steps).clamp(max=steps - 1) + 1
        return (k / steps).float()
    return ((1.0 - eps) * u + eps).float()
