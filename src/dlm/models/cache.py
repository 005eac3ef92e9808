"""The model's step forward for sampling: one canvas layout, logits of the columns a step reads.

A sampler calls a step forward once per step. It is built once per canvas (the attention
inputs are made once) and told, at each block start, which columns ``[lo, hi)`` the coming
steps read. It returns their *aligned* logits (``out[:, j]`` predicts column ``lo + j``) and
runs the LM head only there: the head's input is indexed (``logits_to_keep``), so no
B x L x V tensor is ever made, and the shift (output at i - 1 predicts token i) is done by
picking the columns, never by concatenating logits.

Three kinds, one interface (``start_block(lo, hi)``, then ``__call__(tokens)``):

* ``FullStepForward`` (cache ``none``): the whole canvas every call, exact. With ``compile``
  the call goes through ``torch.compile(mode="reduce-overhead")`` (static shapes: CUDA graphs
  on a GPU).
* ``CachedStepForward`` (cache ``prefix`` / ``dual``, Fast-dLLM's PrefixCache and DualCache):
  the first call after ``start_block`` is a full forward that also returns every layer's keys
  and values (the *refresh*); later calls feed only a window (the block and what follows it,
  or the block alone) and attend to the cached keys and values of the other columns. The
  window's fresh keys and values are written into the refreshed cache in place, at their own
  columns (canvas order, as Fast-dLLM's ``replace_position``), so a step allocates and copies
  no cache. Between refreshes the cache is approximate: cached columns do not see tokens
  committed since.

With ``shift`` the window starts one column before the block, so the block's first column is
predicted from a fresh output; ``window_at_block=True`` starts it at the block instead
(Fast-dLLM's Dream block sampler, whose block-start pass commits that column and whose window
reads its own output there).

Padding: keys of padded columns are masked (a 4-D boolean mask), positions come from the
cumulative sum of the padding mask, as in ``attention.build_attention``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from dlm.errors import DlmUserError

from .attention import build_attention, canvas_positions

if TYPE_CHECKING:
    from .diffusion_lm import DiffusionLM

__all__ = ["CACHE_MODES", "CachedStepForward", "FullStepForward"]

CACHE_MODES = ("none", "prefix", "dual")


def _first_real(valid: torch.Tensor | None, length: int, batch: int, device) -> torch.Tensor:
    """(B, L) bool: each row's first real column (it keeps its own logits under ``shift``)."""
    if valid is None:
        first = torch.zeros(batch, length, dtype=torch.bool, device=device)
        first[:, 0] = True
        return first
    before = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)
    return valid & ~before


class _Reader:
    """Which model outputs give the aligned logits of canvas columns ``[lo, hi)``.

    ``outputs_from`` is the canvas column of the first output the forward produces (0 for a
    full pass, the window start for a cached one). ``keep`` indexes those outputs; ``own``
    (B,) marks rows whose column ``lo`` is their first real token, which under ``shift`` reads
    its own output instead of the one before it.
    """

    def __init__(self, shift: bool, first_real: torch.Tensor) -> None:
        self.shift, self.first_real = shift, first_real
        # the columns where some row's first real token sits (one host sync per canvas)
        self.own_columns = set(first_real[:, 1:].any(0).nonzero().flatten().add(1).tolist())

    def plan(self, lo: int, hi: int, outputs_from: int, device) -> None:
        cols = torch.arange(lo, hi, device=device)
        if self.shift:
            cols = (cols - 1).clamp(min=outputs_from)  # column 0 (and a window's first) reads itself
        self.keep = cols - outputs_from
        self.own_at_lo = None
        if self.shift and lo > outputs_from and lo in self.own_columns:
            self.keep = torch.cat([self.keep, torch.tensor([lo - outputs_from], device=device)])
            self.own_at_lo = self.first_real[:, lo].view(-1, 1, 1)
        self.width = hi - lo

    def read(self, logits: torch.Tensor) -> torch.Tensor:
        """Aligned (B, hi - lo, V) logits from the kept outputs."""
        if self.own_at_lo is None:
            return logits
        first = torch.where(self.own_at_lo, logits[:, -1:], logits[:, :1])
        return torch.cat([first, logits[:, 1 : self.width]], dim=1)


class FullStepForward:
    """The whole canvas every call; returns the aligned logits of the current columns."""

    def __init__(
        self,
        model: DiffusionLM,
        attention_mask: torch.Tensor | None,
        length: int,
        device: torch.device,
        *,
        compile: bool = False,
    ) -> None:
        model.check_length(length)
        mode = "bidirectional" if model.config.attention == "annealed" else model.config.attention
        att = build_attention(mode, attention_mask, length, device=device)
        model.set_causal(att.causal)
        self.model, self.compiled = model, compile
        self.run = model.compiled_head_logits if compile else model.head_logits
        self.mask, self.positions = model.backend_mask(att.attention_mask), att.position_ids
        valid = None if attention_mask is None else attention_mask.bool()
        self.device = device
        self.reader = _Reader(model.config.shift, _first_real(valid, length, 1, device))

    def start_block(self, lo: int, hi: int) -> None:
        self.reader.plan(lo, hi, 0, self.device)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        logits = self.run(tokens, self.mask, self.positions, self.reader.keep)
        # a replayed CUDA graph overwrites its output buffer on the next call: keep a copy
        return self.reader.read(logits.clone() if self.compiled else logits)


class _WindowLayer(CacheLayerMixin):
    """One layer's refreshed keys/values (canvas order); a step writes its window in place."""

    is_sliding = False
    is_compileable = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, lo: int, hi: int) -> None:
        super().__init__()
        self.keys, self.values, self.lo, self.hi = keys, values, lo, hi
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # already initialised
        pass

    def update(self, key_states, value_states, *args, **kwargs):
        self.keys[:, :, self.lo : self.hi].copy_(key_states)
        self.values[:, :, self.lo : self.hi].copy_(value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.keys.shape[-2], 0

    def get_seq_length(self) -> int:
        return self.keys.shape[-2] - (self.hi - self.lo)

    def get_max_length(self) -> int:
        return self.keys.shape[-2]


class CachedStepForward:
    """Prefix or dual key/value cache, refreshed at each block start (same interface)."""

    def __init__(
        self,
        model: DiffusionLM,
        attention_mask: torch.Tensor | None,
        length: int,
        device: torch.device,
        prompt_length: int,
        batch: int,
        *,
        dual: bool,
        window_at_block: bool = False,
    ) -> None:
        if model.is_autoregressive:
            raise DlmUserError(
                "cache='prefix'/'dual' is for diffusion models; an AR model decodes with its own cache"
            )
        model.check_length(length)
        self.model, self.dual, self.length = model, dual, length
        self.window_at_block = window_at_block
        self.valid = None if attention_mask is None else attention_mask.bool()
        self.positions = canvas_positions(self.valid, length, batch, device)
        p0 = prompt_length
        empty_prompt = p0 == 0 or (self.valid is not None and not bool(self.valid[:, p0 - 1].all()))
        if model.config.shift and empty_prompt:
            raise DlmUserError(
                "a shifted model predicts the first new token from the last prompt token, so cached "
                "sampling needs every prompt to have at least one token (add a BOS token to empty prompts)"
            )
        model.set_causal(False)
        self.full_mask = None
        if self.valid is not None:
            allowed = self.valid[:, None, :, None] & self.valid[:, None, None, :]
            allowed |= torch.eye(length, dtype=torch.bool, device=device)[None, None]
            self.full_mask = model.backend_mask(allowed)
        first = _first_real(self.valid, length, batch, device)
        self.reader, self.full_reader = _Reader(model.config.shift, first), _Reader(model.config.shift, first)
        self.cache: Cache | None = None

    def start_block(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        shifted = self.model.config.shift and not self.window_at_block
        self.w_lo = lo - 1 if shifted else lo
        self.w_hi = hi if self.dual else self.length
        device = self.positions.device
        self.full_reader.plan(lo, hi, 0, device)
        self.reader.plan(lo, hi, self.w_lo, device)
        self.window_positions = self.positions[:, self.w_lo : self.w_hi]
        self.window_mask = None
        if self.valid is not None:
            keys = self.valid[:, None, None, :].expand(-1, 1, self.w_hi - self.w_lo, -1)
            self.window_mask = self.model.backend_mask(keys)
        self.cache = None

    def refresh(self, tokens: torch.Tensor) -> torch.Tensor:
        """A full forward that also keeps every layer's keys and values for the block."""
        positions = self.positions if self.valid is not None else None
        logits, cache = self.model.backbone_call(
            tokens, self.full_mask, positions, use_cache=True, logits_to_keep=self.full_reader.keep
        )
        self.cache = Cache(
            layers=[_WindowLayer(kv.keys, kv.values, self.w_lo, self.w_hi) for kv in cache.layers]
        )
        return self.full_reader.read(logits)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.cache is None:
            return self.refresh(tokens)
        logits, _ = self.model.backbone_call(
            tokens[:, self.w_lo : self.w_hi],
            self.window_mask,
            self.window_positions,
            cache=self.cache,
            use_cache=True,
            logits_to_keep=self.reader.keep,
        )
        return self.reader.read(logits)
