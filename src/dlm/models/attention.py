"""How the backbone sees the canvas: bidirectional, causal, annealed from causal, block-causal.

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
* ``block_causal`` (block diffusion: BD3-LM, SDAR, Fast-dLLM v2): bidirectional inside a block
  of ``block_size`` positions, causal across blocks. A token's block is its *position* (from
  the padding mask) // block_size, so left padding shifts no block boundary. Block size 1 is
  the causal mask and a block as long as the sequence the bidirectional one: both take SDPA's
  maskless path when nothing is padded; other sizes pass an explicit mask.

``block_denoising_attention`` is the mask of block diffusion's training forward, which runs a
noisy copy and the clean sequence side by side (``[x_t ; x_0]``, 2L columns): a noisy token
sees its own block of the noisy copy and the clean copy's earlier blocks; a clean token sees
the clean copy block-causally. Every block is trained in one pass with its clean prefix as
context, as it is sampled with an exact cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "ATTENTION_MODES",
    "AttentionInputs",
    "anneal_ratio",
    "block_denoising_attention",
    "block_ids",
    "block_size_at",
    "build_attention",
    "set_causal",
]

ATTENTION_MODES = ("bidirectional", "causal", "annealed", "block_causal")


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


def block_size_at(step: int, block_size: int, anneal_steps: int) -> int:
    """The block size at training step ``step`` when it is annealed over ``anneal_steps``.

    It doubles from 1 (with ``shift``, block size 1 is next-token prediction: the AR parent's
    own task) up to ``block_size`` in equal stages, the last one reached at ``anneal_steps``;
    0 anneal steps is ``block_size`` from the start.
    """
    if anneal_steps <= 0 or block_size <= 1:
        return block_size
    stages = max(block_size - 1, 1).bit_length()  # 1, 2, 4, ... then block_size itself
    stage = min(stages, (step * (stages + 1)) // anneal_steps)
    return min(block_size, 1 << stage)


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


def canvas_positions(
    valid: torch.Tensor | None, length: int, batch: int, device: torch.device
) -> torch.Tensor:
    """(B, L) positions of a canvas: real tokens counted from 0 (padding repeats its
    neighbour's), or 0..L-1 in every row without a padding mask."""
    if valid is not None:
        return _position_ids(valid)
    return torch.arange(length, device=device).expand(batch, -1)


def block_ids(positions: torch.Tensor, block_size: int) -> torch.Tensor:
    """Each token's block: its position // block_size (positions count real tokens only)."""
    return torch.div(positions, block_size, rounding_mode="floor")


def _padding_pairs(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) ``valid_i AND valid_j``, and each padded query sees itself (no empty row)."""
    pair = valid[:, None, :, None] & valid[:, None, None, :]
    eye = torch.eye(valid.shape[1], dtype=torch.bool, device=valid.device)[None, None]
    return pair | (eye & ~valid[:, None, :, None])


def build_attention(
    mode: str,
    attention_mask: torch.Tensor | None,
    seq_len: int,
    *,
    ratio: float = 1.0,
    block_size: int | None = None,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
) -> AttentionInputs:
    """What to pass to the backbone for ``mode`` given a (B, L) padding mask (1 = real token).

    ``block_size`` is the block length of ``block_causal`` (required there, ignored elsewhere).
    """
    if mode not in ATTENTION_MODES:
        raise ValueError(
            f"unknown attention mode {mode!r}; choose one of: {', '.join(ATTENTION_MODES)}"
        )
    padded = attention_mask is not None and not bool(attention_mask.bool().all())
    if mode == "annealed" and ratio >= 1.0:
        mode = "bidirectional"
    if mode == "block_causal":
        if block_size is None or block_size < 1:
            raise ValueError(f"block_causal attention needs a block_size >= 1; got {block_size}")
        if block_size == 1:
            mode = "causal"
        elif block_size >= seq_len:
            mode = "bidirectional"
    if not padded and mode in ("bidirectional", "causal"):
        return AttentionInputs(None, None, causal=(mode == "causal"))

    device = attention_mask.device if attention_mask is not None else device
    valid = attention_mask.bool() if padded else None
    position_ids = _position_ids(valid) if padded else None
    if mode == "block_causal":
        pos = position_ids if padded else torch.arange(seq_len, device=device)[None]
        blk = block_ids(pos, block_size)
        allowed = (blk[:, :, None] >= blk[:, None, :])[:, None]
    else:
        tril = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()
        if mode == "bidirectional":
            allowed = torch.ones_like(tril)
        elif mode == "causal":
            allowed = tril
        else:
            bern = torch.rand(seq_len, seq_len, generator=generator, device=device) < ratio
            allowed = tril | bern
        allowed = allowed[None, None]
    if padded:
        allowed = allowed & _padding_pairs(valid)
    return AttentionInputs(allowed, position_ids, causal=False)


def block_denoising_attention(
    attention_mask: torch.Tensor | None,
    seq_len: int,
    block_size: int,
    *,
    batch: int = 1,
    device: torch.device | None = None,
) -> AttentionInputs:
    """The attention of block diffusion's training forward over ``[x_t ; x_0]`` (2L columns).

    Query and key blocks come from positions (both copies take positions 0..L-1 of their row,
    padding not counted). A noisy query (first L columns) sees noisy keys of its own block and
    clean keys of earlier blocks; a clean query sees clean keys of its own and earlier blocks
    and never a noisy one. Padded keys are hidden; a padded query sees itself.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1; got {block_size}")
    if attention_mask is not None:
        valid = attention_mask.bool()
        device = valid.device
    else:
        valid = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    pos = _position_ids(valid)
    blk = block_ids(pos, block_size)
    q, k = blk[:, :, None], blk[:, None, :]
    noisy_noisy, noisy_clean, clean_clean = q == k, q > k, q >= k
    top = torch.cat([noisy_noisy, noisy_clean], dim=2)
    bottom = torch.cat([torch.zeros_like(clean_clean), clean_clean], dim=2)
    allowed = torch.cat([top, bottom], dim=1)[:, None]
    allowed = allowed & _padding_pairs(torch.cat([valid, valid], dim=1))
    return AttentionInputs(allowed, torch.cat([pos, pos], dim=1), causal=False)
