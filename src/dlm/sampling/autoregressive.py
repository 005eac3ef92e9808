"""Greedy left-to-right decoding for the AR baseline (a ``DiffusionLM`` with causal attention).

Uses the backbone's own ``transformers`` ``generate`` with its KV cache, so the baseline is
as fast as AR decoding normally is; the output has the same layout as the diffusion sampler's
(left-padded prompt block, then ``max_new_tokens`` columns, padding after EOS).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from dlm.errors import SettingsError
from dlm.models.modes import eval_mode

from .canvas import left_pad, trim_after_eos

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["ar_generate"]


@torch.no_grad()
def ar_generate(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    max_new_tokens: int,
):
    from .generate import GenerationOutput, count_generated

    cfg = model.config
    pad_id = cfg.fill_token_id
    device = model.device
    ids, mask = left_pad(
        input_ids.to(device), None if attention_mask is None else attention_mask.to(device), pad_id
    )
    if mask is None:
        mask = torch.ones_like(ids)
    limit = model.max_positions
    if limit is not None and ids.shape[1] + max_new_tokens > limit:
        raise SettingsError(
            f"prompt ({ids.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
            f"model's {limit} positions; shorten the prompt or lower max_new_tokens"
        )
    start = time.perf_counter()
    with eval_mode(model):  # an AR twin's attention is causal from the moment it is built
        out = model.backbone.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            do_sample=False,
            eos_token_id=cfg.eos_token_id,
            pad_token_id=pad_id,
        )
    wall = time.perf_counter() - start
    nfe = out.shape[1] - ids.shape[1]
    if out.shape[1] < ids.shape[1] + max_new_tokens:
        pad = torch.full(
            (out.shape[0], ids.shape[1] + max_new_tokens - out.shape[1]),
            pad_id,
            dtype=out.dtype,
            device=device,
        )
        out = torch.cat([out, pad], dim=1)
    out = trim_after_eos(out, ids.shape[1], cfg.eos_token_id, pad_id)
    return GenerationOutput(
        sequences=out,
        prompt_length=ids.shape[1],
        nfe=nfe,
        wall_time=wall,
        generated_tokens=count_generated(out[:, ids.shape[1] :], cfg.eos_token_id),
    )
