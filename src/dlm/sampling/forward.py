"""How a sampling step gets its logits: a full forward, or one that reuses a key/value cache.

* ``none``: the whole canvas every step (exact). With ``compile`` the per-step function is
  ``torch.compile(mode="reduce-overhead")``: the canvas has a static shape, so on a GPU the
  forward is replayed as a CUDA graph.
* ``prefix`` (Fast-dLLM PrefixCache): at each block start one full forward computes every
  position's keys and values; later steps of the block feed only the block and what follows
  it, attending to the cached keys/values of everything before the block.
* ``dual`` (Fast-dLLM DualCache): also keeps the keys/values of everything after the block,
  so later steps feed only the block itself.

The caches are refreshed at every block start and are approximate in between (the cached
keys/values do not see tokens committed since). They work for any batch, ragged prompts
included: padded keys are masked. With ``shift`` the output at i - 1 predicts token i, so the
fed window starts one column before the block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache

from dlm.models.diffusion_lm import shift_logits

from .blocks import Block
from .canvas import Canvas

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["CACHE_MODES", "StepForward", "make_step_forward"]

CACHE_MODES = ("none", "prefix", "dual")


class StepForward:
    """Full forward of the canvas each call; returns the aligned logits of the current block."""

    def __init__(self, model: DiffusionLM, canvas: Canvas, compile: bool = False) -> None:
        self.logits_of = model.canvas_forward(
            canvas.attention_mask, canvas.tokens.shape[1], canvas.tokens.device, compile=compile
        )
        self.compiled = compile
        self.block: Block | None = None

    def start_block(self, block: Block) -> None:
        self.block = block

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.logits_of(tokens)[:, self.block.start : self.block.end]
        # a replayed CUDA graph overwrites its output buffer on the next call: keep a copy
        return logits.clone() if self.compiled else logits


class CachedStepForward:
    """Prefix or dual key/value cache, refreshed at each block start (same interface as StepForward)."""

    def __init__(self, model: DiffusionLM, canvas: Canvas, dual: bool) -> None:
        if model.is_autoregressive:
            raise ValueError(
                "cache='prefix'/'dual' is for diffusion models; an AR model decodes with its own cache"
            )
        self.model, self.dual = model, dual
        tokens = canvas.tokens
        self.length = tokens.shape[1]
        self.valid = None if canvas.attention_mask is None else canvas.attention_mask.bool()
        if self.valid is not None:
            self.positions = (self.valid.long().cumsum(1) - 1).clamp(min=0)
        else:
            self.positions = torch.arange(self.length, device=tokens.device).expand(
                tokens.shape[0], -1
            )
        p0 = canvas.prompt_length
        empty_prompt = p0 == 0 or (self.valid is not None and not bool(self.valid[:, p0 - 1].all()))
        if model.config.shift and empty_prompt:
            raise ValueError(
                "a shifted model predicts the first new token from the last prompt token, so cached sampling "
                "needs every prompt to have at least one token (add a BOS token to empty prompts)"
            )
        self.full = model.canvas_forward(canvas.attention_mask, self.length, tokens.device)
        self.kept: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.keep_index: torch.Tensor | None = None
        self.block = None

    def start_block(self, block: Block) -> None:
        self.block = block
        self.kept = None

    def _window(self) -> tuple[int, int]:
        lo = self.block.start - 1 if self.model.config.shift else self.block.start
        return lo, (self.block.end if self.dual else self.length)

    def _refresh(self, tokens: torch.Tensor) -> torch.Tensor:
        self.model._set_causal(False)
        mask = None
        if self.valid is not None:
            allowed = self.valid[:, None, :, None] & self.valid[:, None, None, :]
            allowed |= torch.eye(self.length, dtype=torch.bool, device=tokens.device)[None, None]
            mask = self.model._backend_mask(allowed)
        raw, cache = self.model.backbone_call(
            tokens, mask, self.positions if self.valid is not None else None, use_cache=True
        )
        lo, hi = self._window()
        keep = torch.cat([torch.arange(0, lo), torch.arange(hi, self.length)]).to(tokens.device)
        self.keep_index = keep
        self.kept = [
            (layer.keys.index_select(2, keep), layer.values.index_select(2, keep))
            for layer in cache.layers
        ]
        logits = shift_logits(raw, self.valid) if self.model.config.shift else raw
        return logits[:, self.block.start : self.block.end]

    def _cache(self) -> Any:
        cache = DynamicCache(config=self.model.backbone.config)
        for layer, (keys, values) in enumerate(self.kept):
            cache.update(keys, values, layer)
        return cache

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.kept is None:
            return self._refresh(tokens)
        lo, hi = self._window()
        mask = None
        if self.valid is not None:
            keys_valid = torch.cat(
                [self.valid.index_select(1, self.keep_index), self.valid[:, lo:hi]], dim=1
            )
            mask = self.model._backend_mask(keys_valid[:, None, None, :].expand(-1, 1, hi - lo, -1))
        raw, _ = self.model.backbone_call(
            tokens[:, lo:hi], mask, self.positions[:, lo:hi], cache=self._cache(), use_cache=True
        )
        return raw[:, : self.block.end - self.block.start]


def make_step_forward(
    model: DiffusionLM, canvas: Canvas, cache: str, compile: bool
) -> StepForward | CachedStepForward:
    if cache not in CACHE_MODES:
        raise ValueError(f"unknown cache {cache!r}; choose one of: {', '.join(CACHE_MODES)}")
    if cache == "none":
        return StepForward(model, canvas, compile=compile)
    if compile:
        raise ValueError(
            "compile=True needs cache='none' (a static-shape canvas); the caches change shape per block"
        )
    return CachedStepForward(model, canvas, dual=cache == "dual")
