"""How the backbone sees the canvas: bidirectional, causal, or annealed from causal.

``build_attention`` turns an attention mode, an optional 2-D padding mask and an annealing
ratio into what a Hugging Face backbone takes:

* no padding, bidirectional or causal: no mask at all, so SDPA runs its fast kernels with
  ``is_causal`` set on the attention modules (``set_causal``);
* padding: a 4-D boolean mask ``valid_i AND valid_j`` (AND causal for ``causal``), with each
  padded query also allowed to see itself so that no row is empty, and position ids from the
  cumulative sum of the padding mask, so real tokens see exactly the positions they would
  see unpadded;
* ``annealed`` (DiffuGPT): causal OR Bernoulli(r), one L x L draw per forward shared across
  the batch; r = 0 is causal, r = 1 bidirectional.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ATTENTION_MODES", "AttentionInputs", "build_attention", "anneal_ratio", "set_causal"]

ATTENTION_MODES = ("bidirectional", "causal", "annealed")


@dataclass
class AttentionInputs:
    """Keyword arguments for the backbone and whether its modules must run causally."""

    attention_mask: torch.Tensor | None
    position_ids: torch.Tensor | None
    causal: bool


def anneal_ratio(step: int, anneal_steps: int) -> float:
    """DiffuGPT's schedule r = min(1, (step + 1) / anneal_steps)."""
    if anneal_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / anneal_steps)


def set_causal(backbone: nn.Module, causal: bool) -> None:
    """Switch every attention module (and the config) of an HF backbone to (non-)causal."""
    config = getattr(backbone, "config", None)
    if config is not None and getattr(config, "is_causal", None) is not causal:
        config.is_causal = causal
    for module in backbone.modules():
        if hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = causal


def _position_ids(valid: torch.Tensor) -> torch.Tensor:
    return (valid.long().cumsum(-1) - 1).clamp(min=0)


def build_attention(
    mode: str,
    attention_mask: torch.Tensor | None,
    seq_len: int,
    *,
    ratio: float = 1.0,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
) -> AttentionInputs:
    """What to pass to the backbone for ``mode`` given a (B, L) padding mask (1 = real token)."""
    if mode not in ATTENTION_MODES:
        raise ValueError(
            f"unknown attention mode {mode!r}; choose one of: {', '.join(ATTENTION_MODES)}"
        )
    padded = attention_mask is not None and not bool(attention_mask.bool().all())
    if mode == "annealed" and ratio >= 1.0:
        mode = "bidirectional"
    if not padded and mode in ("bidirectional", "causal"):
        return AttentionInputs(None, None, causal=(mode == "causal"))

    device = attention_mask.device if attention_mask is not None else device
    tril = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
    if mode == "bidirectional":
        allowed = torch.ones_like(tril)
    elif mode == "causal":
        allowed = tril
    else:
        bern = torch.rand(seq_len, seq_len, generator=generator, device=device) < ratio
        allowed = tril | bern
    allowed = allowed[None, None]
    position_ids = None
    if padded:
        valid = attention_mask.bool()
        pair = valid[:, None, :, None] & valid[:, None, None, :]
        eye = torch.eye(seq_len, dtype=torch.bool, device=device)[None, None]
        pair = pair | (eye & ~valid[:, None, :, None])
        allowed = allowed & pair
        position_ids = _position_ids(valid)
    return AttentionInputs(allowed, position_ids, causal=False)
