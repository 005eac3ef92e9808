"""One sampling loop for generation and infilling with masked diffusion LMs.

A step: forward -> propose tokens (temperature, top-p, top-k) -> score positions (policy) ->
decide how many to commit (schedule) -> commit -> record history -> check stopping. Every
operation is batched over rows; counts are per row. A row stops when it holds an EOS with
nothing masked before it (the rest becomes padding); the loop stops when every row has.

Exact semantics follow Dream's ``diffusion_generate`` (time grid, ``random`` = ``origin``,
confidence/margin/entropy top-k, ``policy_temperature`` = ``alg_temp``) and MGDM's easy-first
``remask`` decoding; see ``reference/dream_diffullama.md`` and ``reference/mgdm_dot.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .canvas import Canvas, build_canvas, trim_after_eos
from .policies import POLICIES, gumbel_like, score_positions, select_top_k
from .proposal import Proposal, propose
from .schedule import commit_counts, time_grid

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["GenerationOutput", "SamplerSettings", "generate"]


@dataclass(frozen=True)
class SamplerSettings:
    """Everything a loop needs to know besides the model and the canvas."""

    steps: int
    policy: str = "confidence"
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    policy_temperature: float = 0.0
    eps: float = 1e-3
    remask_noise: float = 0.5
    output_history: bool = False


@dataclass
class GenerationOutput:
    """Sampled canvases and what producing them cost."""

    sequences: torch.Tensor  # (B, P + N): left-padded prompt, then the generated region
    prompt_length: int
    nfe: int  # forward passes of the model
    wall_time: float  # seconds
    generated_tokens: int  # tokens up to and including each row's EOS (not padding)
    history: list[torch.Tensor] | None = field(default=None, repr=False)

    @property
    def generated(self) -> torch.Tensor:
        """(B, N): the generation region alone."""
        return self.sequences[:, self.prompt_length :]

    @property
    def tokens_per_forward(self) -> float:
        return self.generated_tokens / max(self.nfe, 1)

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.wall_time if self.wall_time > 0 else math.inf


def _count_generated(region: torch.Tensor, eos_token_id: int | None) -> int:
    if eos_token_id is None:
        return int(region.numel())
    is_eos = region == eos_token_id
    has_eos = is_eos.any(1)
    first = torch.where(
        has_eos,
        is_eos.float().argmax(1) + 1,
        torch.full_like(has_eos, region.shape[1], dtype=torch.long),
    )
    return int(first.sum())


def _finish_rows(
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


@torch.no_grad()
def generate(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    max_new_tokens: int,
    steps: int | None = None,
    policy: str = "confidence",
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    policy_temperature: float = 0.0,
    fixed: torch.Tensor | None = None,
    output_history: bool = False,
    seed: int | None = None,
    eps: float = 1e-3,
    remask_noise: float = 0.5,
) -> GenerationOutput:
    """Fill ``max_new_tokens`` masked positions after each prompt.

    Args:
        input_ids: (B, P) prompts; any padding, marked by ``attention_mask`` (1 = real).
        max_new_tokens: length N of the generation region.
        steps: number of denoising steps (default: N, one token per step).
        policy: ``random``, ``confidence``, ``margin``, ``entropy`` or ``remask``.
        temperature, top_p, top_k: token proposal; temperature 0 is greedy.
        policy_temperature: > 0 samples positions from softmax(score / it) instead of top-k.
        fixed: (B, N) ids pinned in the generation region (negative = free), for infilling.
        output_history: keep the canvas after every step.
        seed: seeds every random draw of this call.
        eps: the last time of the grid ``linspace(1, eps, steps + 1)``.
        remask_noise: Gumbel scale factor of ``remask`` (noise = remask_noise * t / T).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of: {', '.join(POLICIES)}")
    if model.is_autoregressive:
        from .autoregressive import ar_generate

        return ar_generate(model, input_ids, attention_mask, max_new_tokens=max_new_tokens)
    cfg = model.config
    pad_id = cfg.pad_token_id if cfg.pad_token_id is not None else (cfg.eos_token_id or 0)
    device = model.device
    input_ids = input_ids.to(device)
    attention_mask = attention_mask.to(device) if attention_mask is not None else None
    if fixed is not None:
        fixed = fixed.to(device)
    canvas = build_canvas(
        input_ids,
        attention_mask,
        max_new_tokens,
        mask_token_id=cfg.mask_token_id,
        pad_token_id=pad_id,
        fixed=fixed,
    )
    total = canvas.tokens.shape[1]
    limit = model.max_positions
    if limit is not None and total > limit:
        raise ValueError(
            f"prompt ({canvas.prompt_length} tokens) + max_new_tokens ({max_new_tokens}) = {total} "
            f"exceeds the model's {limit} positions; shorten the prompt or lower max_new_tokens"
        )
    steps = max_new_tokens if steps is None else int(steps)
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)

    was_training = model.training
    model.eval()
    start = time.perf_counter()
    settings = SamplerSettings(
        steps=steps,
        policy=policy,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        policy_temperature=policy_temperature,
        eps=eps,
        remask_noise=remask_noise,
        output_history=output_history,
    )
    run = _remask_loop if policy == "remask" else _commit_loop
    tokens, nfe, history = run(model, canvas, settings, generator, pad_id)
    tokens = trim_after_eos(tokens, canvas.prompt_length, cfg.eos_token_id, pad_id)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    model.train(was_training)
    return GenerationOutput(
        sequences=tokens,
        prompt_length=canvas.prompt_length,
        nfe=nfe,
        wall_time=wall,
        generated_tokens=_count_generated(tokens[:, canvas.prompt_length :], cfg.eos_token_id),
        history=history,
    )


def _propose(
    model: DiffusionLM,
    canvas: Canvas,
    tokens: torch.Tensor,
    s: SamplerSettings,
    generator: torch.Generator | None,
) -> Proposal:
    """One forward pass over the canvas and a token proposal for the generation region."""
    logits = model(tokens, canvas.attention_mask)[:, canvas.prompt_length :]
    return propose(
        logits,
        temperature=s.temperature,
        top_p=s.top_p,
        top_k=s.top_k,
        mask_token_id=model.config.mask_token_id,
        generator=generator,
    )


LoopResult = tuple[torch.Tensor, int, "list[torch.Tensor] | None"]


def _commit_loop(
    model: DiffusionLM,
    canvas: Canvas,
    s: SamplerSettings,
    generator: torch.Generator | None,
    pad_id: int,
) -> LoopResult:
    """Policies that commit masked positions for good: random, confidence, margin, entropy."""
    cfg = model.config
    tokens = canvas.tokens.clone()
    region = tokens[:, canvas.prompt_length :]  # a view: writes land in ``tokens``
    masked = canvas.free & (region == cfg.mask_token_id)
    counts = commit_counts(masked.sum(1), s.steps)
    grid = time_grid(s.steps, s.eps)
    history = [tokens.clone()] if s.output_history else None
    nfe = 0
    for i in range(s.steps):
        if not masked.any():
            break
        proposal = _propose(model, canvas, tokens, s, generator)
        nfe += 1
        last = i == s.steps - 1
        if s.policy == "random":
            reveal = 1.0 if last else 1.0 - float(grid[i + 1]) / float(grid[i])
            draw = torch.rand(masked.shape, generator=generator, device=masked.device)
            commit = masked & (draw < reveal)
        else:
            k = masked.sum(1) if last else counts[:, i]
            scores = score_positions(s.policy, proposal)
            commit = select_top_k(
                scores, masked, k, temperature=s.policy_temperature, generator=generator
            )
        region[commit] = proposal.tokens[commit]
        masked = _finish_rows(region, masked & ~commit, cfg.eos_token_id, pad_id)
        if history is not None:
            history.append(tokens.clone())
    return tokens, nfe, history


def _remask_loop(
    model: DiffusionLM,
    canvas: Canvas,
    s: SamplerSettings,
    generator: torch.Generator | None,
    pad_id: int,
) -> LoopResult:
    """MGDM easy-first decoding: re-predict every free position, re-mask the least confident."""
    mask_id = model.config.mask_token_id
    tokens = canvas.tokens.clone()
    p0 = canvas.prompt_length
    free = canvas.free
    num_free = free.sum(1)
    history = [tokens.clone()] if s.output_history else None
    for i in range(s.steps):
        proposal = _propose(model, canvas, tokens, s, generator)
        region = torch.where(free, proposal.tokens, tokens[:, p0:])
        t = s.steps - 1 - i
        if t > 0:
            ratio = t / s.steps
            k = torch.floor(num_free.double() * ratio).long()
            score = torch.log(proposal.confidence.clamp_min(1e-30))
            if s.remask_noise > 0:
                score = score + s.remask_noise * ratio * gumbel_like(score, generator)
            region = region.masked_fill(select_top_k(-score, free, k), mask_id)
        tokens = torch.cat([tokens[:, :p0], region], dim=1)
        if history is not None:
            history.append(tokens.clone())
    return tokens, s.steps, history
