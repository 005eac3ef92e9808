"""Loss weights: per-sequence (ELBO 1/t, MGDM linear), per-token (Dream's CART, MGDM focal).

* ``elbo``: the schedule's ELBO weight, 1/t for the linear schedule (MDLM, DiffuLLaMA).
* ``linear``: MGDM's sequence reweighting w = T - k + 1 for discrete step k (favours lightly
  masked examples); needs a discrete schedule.
* ``cart``: Dream's context-adaptive token weights, w_n = 1/2 sum_i clean_i p (1-p)^(|n-i|-1)
  over clean positions i != n; zero at clean positions.
* ``none``: every masked token weighs 1.

MGDM's token reweighting v = alpha (1 - exp(-CE))^beta multiplies on top, with the gradient
flowing through v (no stop-gradient), as in the paper's code.
"""

from __future__ import annotations

import torch

from .schedules import NoiseSchedule

__all__ = ["WEIGHTINGS", "sequence_weights", "cart_weights", "token_reweighting", "loss_weights"]

WEIGHTINGS = ("elbo", "linear", "cart", "none")


def sequence_weights(name: str, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
    """A (B,) weight per row for the sequence-level weightings ``elbo``, ``linear``, ``none``."""
    if name == "elbo":
        return schedule.elbo_weight(t)
    if name == "linear":
        if schedule.num_steps is None:
            raise ValueError(
                "weighting 'linear' (w = T - t + 1) needs a discrete schedule: set "
                "diffusion.schedule=discrete and diffusion.num_steps=T"
            )
        k = torch.round(t * schedule.num_steps).clamp(1, schedule.num_steps)
        return schedule.num_steps - k + 1.0
    if name == "none":
        return torch.ones_like(t)
    raise ValueError(f"{name!r} is not a sequence weighting; choose one of: elbo, linear, none")


def _cart_kernel(length: int, p: float, device, dtype=torch.float32) -> torch.Tensor:
    idx = torch.arange(length, device=device)
    dist = (idx[:, None] - idx[None, :]).abs()
    kernel = 0.5 * p * (1.0 - p) ** (dist.to(dtype) - 1.0)
    return kernel.masked_fill(dist == 0, 0.0)


def cart_weights(masked: torch.Tensor, p: float = 0.1, block_size: int | None = None) -> torch.Tensor:
    """Dream's CART weights for every position of a (B, L) batch.

    ``masked`` marks the [MASK] positions; every other position (prompt included) is context.
    A masked token surrounded by clean neighbours gets a high weight, one deep inside a masked
    span a low weight.

    With ``block_size`` (block diffusion, rows starting at column 0) a token's context is what
    it sees: every position of the earlier blocks (the clean copy), the clean positions of its
    own block, nothing after its block.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"cart_p must lie in (0, 1); got {p}")
    clean = (~masked.bool()).float()
    length = masked.shape[1]
    kernel = _cart_kernel(length, p, masked.device)
    if block_size is None:
        return (clean @ kernel) * masked.float()
    blocks = torch.arange(length, device=masked.device) // block_size
    same = (blocks[:, None] == blocks[None, :]).float()  # [context i, token n]
    before = (blocks[:, None] < blocks[None, :]).float()
    return ((clean @ (kernel * same)) + (kernel * before).sum(0)) * masked.float()


def token_reweighting(ce: torch.Tensor, alpha: float = 0.25, beta: float = 1.0) -> torch.Tensor:
    """MGDM's focal token weight v = alpha (1 - exp(-CE))^beta, differentiable in CE."""
    return alpha * (1.0 - torch.exp(-ce)).pow(beta)


def loss_weights(
    name: str,
    t: torch.Tensor,
    masked: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    cart_p: float = 0.1,
    block_size: int | None = None,
) -> torch.Tensor:
    """A (B, L) weight tensor for any weighting in ``WEIGHTINGS`` (zero outside ``masked``);
    ``block_size``: CART's context of a block-diffusion model (``cart_weights``)."""
    if name == "cart":
        return cart_weights(masked, cart_p, block_size)
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown loss weighting {name!r}; choose one of: {', '.join(WEIGHTINGS)}")
    return sequence_weights(name, t, schedule).unsqueeze(1) * masked.float()
