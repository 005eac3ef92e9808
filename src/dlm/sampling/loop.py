"""The sampling loop, as an iterator of step events shared by ``generate`` and ``stream``.

Each step: logits of the current block (full forward or cached; reused when the previous step
changed nothing) -> optional PAD/EOS penalty -> token proposal -> position scores -> commit
rule -> write -> EOS stopping -> event. Everything is batched over rows: per-row counts,
per-row thresholds, rows that finish early simply stop changing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .blocks import plan_blocks
from .canvas import Canvas
from .commit import factor_commit, threshold_commit
from .events import StepEvent
from .forward import make_step_forward
from .policies import gumbel_like, score_positions, select_top_k
from .proposal import penalize_end_tokens, propose
from .schedule import commit_counts, time_grid

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["SamplerSettings", "SamplingRun"]


@dataclass(frozen=True)
class SamplerSettings:
    """Everything the loop needs to know besides the model and the canvas."""

    steps: int
    policy: str = "confidence"
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    policy_temperature: float = 0.0
    eps: float = 1e-3
    remask_noise: float = 0.5
    block_length: int | None = None
    threshold: float | None = None
    factor: float | None = None
    cache: str = "none"
    compile: bool = False
    eos_penalty: float = 0.0

    @property
    def adaptive(self) -> bool:
        """Threshold and factor rules choose their own number of steps."""
        return self.threshold is not None or self.factor is not None


def finish_rows(
    region: torch.Tensor, masked: torch.Tensor, eos_token_id: int | None, pad_token_id: int
) -> torch.Tensor:
    """Fill with padding the masks after an EOS that has nothing masked before it."""
    if eos_token_id is None:
        return masked
    is_eos = (region == eos_token_id) & ~masked
    masked_before = masked.long().cumsum(1) - masked.long()
    stop_here = is_eos & (masked_before == 0)
    after_stop = (stop_here.long().cumsum(1) - stop_here.long()) > 0
    fill = masked & after_stop
    if fill.any():
        region.masked_fill_(fill, pad_token_id)
        masked = masked & ~fill
    return masked


class SamplingRun:
    """Iterate to sample; afterwards ``tokens`` holds the canvas and ``nfe`` the forward passes."""

    def __init__(
        self,
        model: DiffusionLM,
        canvas: Canvas,
        settings: SamplerSettings,
        generator: torch.Generator | None,
        pad_id: int,
    ) -> None:
        self.model, self.canvas, self.s = model, canvas, settings
        self.generator, self.pad_id = generator, pad_id
        self.tokens = canvas.tokens.clone()
        self.nfe = 0

    def __iter__(self) -> Iterator[StepEvent]:
        return self._remask() if self.s.policy == "remask" else self._commit()

    # ------------------------------------------------------------------ helpers
    def _propose(self, logits: torch.Tensor, masked_fraction: torch.Tensor):
        cfg, s = self.model.config, self.s
        end_ids = [i for i in (cfg.eos_token_id, cfg.pad_token_id) if i is not None]
        logits = penalize_end_tokens(logits, end_ids, s.eos_penalty, masked_fraction)
        return propose(
            logits,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            mask_token_id=cfg.mask_token_id,
            generator=self.generator,
        )

    def _decide(
        self, proposal, eligible: torch.Tensor, count: torch.Tensor, reveal: float
    ) -> torch.Tensor:
        s, gen = self.s, self.generator
        if s.policy == "random" and not s.adaptive:
            draw = torch.rand(eligible.shape, generator=gen, device=eligible.device)
            return eligible & (draw < reveal)
        if s.policy == "random":
            scores = torch.rand(eligible.shape, generator=gen, device=eligible.device)
        else:
            scores = score_positions(s.policy, proposal)
        if s.threshold is not None:
            return threshold_commit(scores, proposal.confidence, eligible, s.threshold)
        if s.factor is not None:
            return factor_commit(proposal.confidence, eligible, s.factor)
        return select_top_k(
            scores, eligible, count, temperature=s.policy_temperature, generator=gen
        )

    # ------------------------------------------------------------------ loops
    def _commit(self) -> Iterator[StepEvent]:
        """Policies that commit masked positions for good: random, confidence, margin, entropy."""
        cfg, s, canvas = self.model.config, self.s, self.canvas
        p0 = canvas.prompt_length
        region = self.tokens[:, p0:]  # a view: writes land in ``self.tokens``
        masked = canvas.free & (region == cfg.mask_token_id)
        free_count = masked.sum(1).clamp(min=1)
        forward = make_step_forward(self.model, canvas, s.cache, s.compile)
        step = 0
        for block in plan_blocks(p0, region.shape[1], s.block_length, s.steps, canvas.free):
            lo, hi = block.start - p0, block.end - p0
            if not masked[:, lo:hi].any():
                continue
            forward.start_block(block)
            counts = commit_counts(masked[:, lo:hi].sum(1), block.steps)
            grid = time_grid(block.steps, s.eps)
            logits = None
            i = 0
            while masked[:, lo:hi].any():
                if logits is None:
                    logits = forward(self.tokens)
                    self.nfe += 1
                proposal = self._propose(logits, masked.sum(1) / free_count)
                eligible = masked[:, lo:hi]
                j = min(i, block.steps - 1)
                last = not s.adaptive and j == block.steps - 1
                reveal = 1.0 if last else 1.0 - float(grid[j + 1]) / float(grid[j])
                count = eligible.sum(1) if last else counts[:, j]
                chosen = self._decide(proposal, eligible, count, reveal)
                window = region[:, lo:hi]
                window[chosen] = proposal.tokens[chosen]
                committed = torch.zeros_like(masked)
                committed[:, lo:hi] = chosen
                before = masked & ~committed
                masked = finish_rows(region, before, cfg.eos_token_id, self.pad_id)
                committed |= before & ~masked
                if committed.any():
                    logits = None  # the canvas changed: the next step needs a new forward
                yield StepEvent(step, block.index, committed, region.clone(), self.nfe)
                step += 1
                i += 1

    def _remask(self) -> Iterator[StepEvent]:
        """MGDM easy-first decoding: predict the masked positions, then re-mask the least
        confident of all free positions, committed ones included.

        A committed token keeps its token and the confidence it was committed with (carry-over,
        as the absorbing process's posterior is exact at an unmasked position). The model's
        output at an unmasked position is never read: the loss trains masked positions only,
        so an unshifted model's output there is arbitrary (it filled 6x6 Sudoku canvases with
        [EOS] when read). With a shifted model, MGDM's code does read it.
        """
        cfg, s, canvas = self.model.config, self.s, self.canvas
        if s.block_length is not None or s.adaptive or s.cache != "none":
            raise ValueError(
                "policy 'remask' re-predicts the whole canvas each step; it takes no block_length, "
                "threshold, factor or cache"
            )
        p0 = canvas.prompt_length
        free = canvas.free
        num_free = free.sum(1)
        forward = make_step_forward(self.model, canvas, "none", s.compile)
        forward.start_block(plan_blocks(p0, free.shape[1], None, s.steps)[0])
        kept_confidence = torch.zeros(free.shape, device=free.device)
        for i in range(s.steps):
            old = self.tokens[:, p0:]
            was_masked = old == cfg.mask_token_id
            logits = forward(self.tokens)
            self.nfe += 1
            proposal = self._propose(logits, was_masked.sum(1) / num_free.clamp(min=1))
            region = torch.where(free & was_masked, proposal.tokens, old)
            kept_confidence = torch.where(was_masked, proposal.confidence.float(), kept_confidence)
            t = s.steps - 1 - i
            if t > 0:
                ratio = t / s.steps
                k = torch.floor(num_free.double() * ratio).long()
                score = torch.log(kept_confidence.clamp_min(1e-30))
                if s.remask_noise > 0:
                    score = score + s.remask_noise * ratio * gumbel_like(score, self.generator)
                region = region.masked_fill(select_top_k(-score, free, k), cfg.mask_token_id)
            committed = (old == cfg.mask_token_id) & (region != cfg.mask_token_id)
            self.tokens = torch.cat([self.tokens[:, :p0], region], dim=1)
            yield StepEvent(i, 0, committed, region.clone(), self.nfe)
