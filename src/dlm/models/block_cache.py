"""The step forward of a block-causal model, with its exact key/value cache of committed blocks.

A block-causal model (``attention: block_causal``) sees each block bidirectionally and every
earlier block causally, so nothing a block holds changes what an earlier block computes: once
a block is decoded, its keys and values are final, as in AR decoding. ``BlockStepForward``
keeps them and never refreshes them.

The canvas is block-aligned (``dlm.sampling.canvas``): the generation region starts at a block
boundary in every row, so model block k of every row covers canvas columns
``[prompt_length + k B - ..., ...)`` alike and the sampler's blocks (the model's, or sub-blocks
that divide it) are the same columns in every row. ``start_block(lo, hi)`` names the sampler's
block; the model block holding it is ``[mlo, mhi)``. Three kinds (the settings' ``cache``):

* ``none``: every call runs the whole canvas with the block-causal mask: exact, and the
  reference the caches are tested against (the later blocks, masked, cannot change the
  current block's logits).
* ``prefix`` (the exact cache): the first call of a model block runs the columns not yet cached
  (the block before, committed since, and the prompt at the first block) together with the
  current block, and keeps their keys and values; later calls run the current model block
  alone against the cache. Same logits as ``none`` at every step, one model block of compute
  per step. Bit for bit in float32 where the kernels compute a row the same whatever the
  number of rows: on the CPU (MKL, oneDNN) that holds for windows a multiple of 4 columns
  wide (measured: a GEMM of 1-3, 5-7 or 9-11 rows takes another micro-kernel and rounds
  differently at 1e-7), so with block sizes a multiple of 4.
* ``dual`` (Fast-dLLM v2's sub-block cache): as ``prefix``, and inside a model block the first
  call of each sub-block (``block_length`` < ``block_size``) refreshes the whole block's keys
  and values; later calls run the sub-block alone (one column before it with ``shift``),
  attending to the block's cached columns: approximate inside the block (the other sub-blocks'
  keys are as of the refresh), exact across blocks.

With ``shift`` a block's first column is predicted from the last column of the block before
(clean, seeing no later block), whose output the first call of the block computes; later calls
reuse it (it cannot change while the block is decoded). Padding: padded keys are masked, and
positions (hence blocks) come from the cumulative sum of the padding mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from dlm.errors import DlmUserError

from .attention import block_ids, canvas_positions

if TYPE_CHECKING:
    from .diffusion_lm import DiffusionLM

__all__ = ["BlockStepForward"]


class _BlockLayer(CacheLayerMixin):
    """One layer's keys/values of the whole canvas, in canvas order, allocated once.

    Before each forward the step forward says where the window's columns go (``start``);
    ``update`` writes the window's fresh keys and values there and returns every column: the
    mask hides the later blocks (whatever they hold), so every call reduces over the same
    keys as a full forward of the canvas, which keeps the cache bit-for-bit exact (a shorter
    key range changes the order of the softmax's sums on vectorised kernels).
    """

    is_sliding = False
    is_compileable = False

    def __init__(self, length: int) -> None:
        super().__init__()
        self.start, self.length = 0, length

    def lazy_initialization(self, key_states, value_states) -> None:
        pass

    def allocate(self, key_states: torch.Tensor, value_states: torch.Tensor, length: int) -> None:
        b, h, _, d = key_states.shape
        self.keys = key_states.new_zeros(b, h, length, d)
        self.values = value_states.new_zeros(b, h, length, value_states.shape[-1])
        self.is_initialized = True

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.allocate(key_states, value_states, self.length)
        end = self.start + key_states.shape[-2]
        self.keys[:, :, self.start : end].copy_(key_states)
        self.values[:, :, self.start : end].copy_(value_states)
        return self.keys, self.values

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length, 0

    def get_seq_length(self) -> int:
        return self.start

    def get_max_length(self) -> int:
        return self.length


class BlockStepForward:
    """A block-causal model's step forward (``none``, ``prefix`` or ``dual``); the interface of
    ``dlm.models.cache``: ``start_block(lo, hi)``, then ``__call__(tokens)`` -> aligned logits
    (B, hi - lo, V) of columns ``[lo, hi)``."""

    def __init__(
        self,
        model: DiffusionLM,
        attention_mask: torch.Tensor | None,
        length: int,
        device: torch.device,
        prompt_length: int,
        batch: int,
        *,
        cache: str,
    ) -> None:
        self.model, self.cache_kind, self.length = model, cache, length
        self.block_size = model.config.block_size
        self.shift = model.config.shift
        self.origin = prompt_length  # a block boundary in every row (block-aligned canvas)
        self.valid = None if attention_mask is None else attention_mask.bool()
        self.positions = canvas_positions(self.valid, length, batch, device)
        # a block-aligned canvas has padding after the region too: its positions, not its
        # columns, must fit the model (one read per canvas)
        model.check_length(length if self.valid is None else int(self.positions.max()) + 1)
        self.blocks = block_ids(self.positions, self.block_size)  # (B, L)
        model.set_causal(False)
        self.cached = 0  # columns [0, cached) hold final keys and values
        self.kv: Cache | None = None
        if cache != "none":
            layers = [_BlockLayer(length) for _ in range(model.backbone.config.num_hidden_layers)]
            self.kv = Cache(layers=layers)
        self.model_block: tuple[int, int] | None = None

    # ------------------------------------------------------------------ planning
    def start_block(self, lo: int, hi: int) -> None:
        b = self.block_size
        mlo = self.origin + ((lo - self.origin) // b) * b
        mhi = min(mlo + b, self.length)
        if hi > mhi:
            raise DlmUserError(
                f"the sampler's block [{lo}, {hi}) crosses the model's block boundary at {mhi}: "
                f"block_length must divide the model's block_size ({b})"
            )
        new_block = self.model_block != (mlo, mhi)
        self.lo, self.hi, self.mlo, self.mhi = lo, hi, mlo, mhi
        self.model_block = (mlo, mhi)
        if new_block:
            self.edge = None  # the output before the block, computed by its first call
        self.fresh = True  # the next call is the (sub-)block's first

    def _window(self) -> tuple[int, int]:
        """This call's fed columns [w_lo, w_hi)."""
        if self.cache_kind == "none":
            return 0, self.length
        if self.fresh:
            return self.cached, self.mhi
        if self.cache_kind == "dual":
            return (self.lo - 1 if self.shift and self.lo > self.mlo else self.lo), self.hi
        return self.mlo, self.mhi

    def _mask(self, w_lo: int, w_hi: int) -> torch.Tensor:
        """Block-causal AND padding for queries [w_lo, w_hi) over the canvas's keys."""
        allowed = self.blocks[:, None, :] <= self.blocks[:, w_lo:w_hi, None]
        if self.valid is not None:
            allowed = allowed & self.valid[:, None, :]
            own = torch.arange(w_lo, w_hi, device=allowed.device)[:, None] == torch.arange(
                self.length, device=allowed.device
            )
            allowed = allowed | (own & ~self.valid[:, w_lo:w_hi, None])  # padded queries: self
        return self.model.backend_mask(allowed[:, None])

    # ------------------------------------------------------------------ the call
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        w_lo, w_hi = self._window()
        # the outputs read: column c's logits come from output c - 1 under shift (column 0,
        # always a pinned prompt token, reads its own)
        device, width = tokens.device, self.hi - self.lo
        columns = torch.arange(self.lo, self.hi, device=device)
        if self.shift:
            columns = (columns - 1).clamp(min=0)
        first = max(self.lo - 1, 0) if self.shift else self.lo
        use_edge = first < w_lo  # the block's first column, computed before
        # with the edge, outputs lo..hi-1 are read and the last dropped: the LM head always
        # runs on hi - lo rows, as the row count of a CPU GEMM picks its kernel (its rounding)
        keep = torch.arange(width, device=device) if use_edge else columns - w_lo
        if self.kv is not None:
            for layer in self.kv.layers:
                layer.start = w_lo
        logits, _ = self.model.backbone_call(
            tokens[:, w_lo:w_hi],
            self._mask(w_lo, w_hi),
            self.positions[:, w_lo:w_hi],
            cache=self.kv,
            use_cache=self.kv is not None,
            logits_to_keep=keep,
        )
        if use_edge:
            logits = torch.cat([self.edge, logits[:, :-1]], dim=1)
        elif self.shift and self.lo == self.mlo:  # later calls of the block reuse it
            self.edge = logits[:, :1]
        if self.fresh and self.kv is not None:
            self.cached = self.mlo  # everything before the current block is clean and final
        self.fresh = False
        return logits
