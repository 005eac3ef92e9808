"""``generate`` and ``stream``: one sampling loop for generation and infilling.

A step: forward (maybe cached) -> propose tokens (temperature, top-p, top-k) -> score positions
(policy) -> decide how many to commit (schedule, threshold or factor) -> commit -> event ->
check stopping. Every operation is batched over rows; counts and thresholds are per row. A row
stops when it holds an EOS with nothing masked before it (the rest becomes padding); the loop
stops when every row has.

Exact semantics follow Dream's ``diffusion_generate`` (time grid, ``random`` = ``origin``,
confidence/margin/entropy top-k, ``policy_temperature`` = ``alg_temp``), LLaDA's blocks,
Fast-dLLM's threshold rule and caches, and MGDM's easy-first ``remask`` decoding; see
``reference/dream_diffullama.md``, ``reference/peers.md`` and ``reference/mgdm_dot.md``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .canvas import Canvas, build_canvas, trim_after_eos
from .events import StepEvent
from .forward import CACHE_MODES
from .loop import SamplerSettings, SamplingRun
from .policies import POLICIES

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["GenerationOutput", "SamplerSettings", "generate", "stream"]


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


def count_generated(region: torch.Tensor, eos_token_id: int | None) -> int:
    """Tokens up to and including each row's first EOS (all of them when a row has none)."""
    if eos_token_id is None:
        return int(region.numel())
    is_eos = region == eos_token_id
    has_eos = is_eos.any(1)
    full = torch.full_like(has_eos, region.shape[1], dtype=torch.long)
    return int(torch.where(has_eos, is_eos.float().argmax(1) + 1, full).sum())


def _prepare(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    max_new_tokens: int,
    fixed: torch.Tensor | None,
    settings: dict,
    seed: int | None,
) -> tuple[Canvas, SamplerSettings, torch.Generator | None, int]:
    if settings["policy"] not in POLICIES:
        raise ValueError(
            f"unknown policy {settings['policy']!r}; choose one of: {', '.join(POLICIES)}"
        )
    if settings["cache"] not in CACHE_MODES:
        raise ValueError(
            f"unknown cache {settings['cache']!r}; choose one of: {', '.join(CACHE_MODES)}"
        )
    if settings["threshold"] is not None and settings["factor"] is not None:
        raise ValueError("give either threshold or factor, not both")
    if settings["factor"] is not None and settings["factor"] <= 0:
        raise ValueError(
            f"factor must be positive (Fast-dLLM uses about 1); got {settings['factor']}"
        )
    threshold = settings["threshold"]
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is a probability in [0, 1]; got {threshold}")
    cfg = model.config
    pad_id = cfg.fill_token_id
    device = model.device
    canvas = build_canvas(
        input_ids.to(device),
        None if attention_mask is None else attention_mask.to(device),
        max_new_tokens,
        mask_token_id=cfg.mask_token_id,
        pad_token_id=pad_id,
        fixed=None if fixed is None else fixed.to(device),
    )
    total, limit = canvas.tokens.shape[1], model.max_positions
    if limit is not None and total > limit:
        raise ValueError(
            f"prompt ({canvas.prompt_length} tokens) + max_new_tokens ({max_new_tokens}) = {total} "
            f"exceeds the model's {limit} positions; shorten the prompt or lower max_new_tokens"
        )
    steps = max_new_tokens if settings["steps"] is None else int(settings["steps"])
    if steps < 1:
        raise ValueError(f"steps must be at least 1; got {steps}")
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    return canvas, SamplerSettings(**{**settings, "steps": steps}), generator, pad_id


@torch.no_grad()
def stream(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    max_new_tokens: int,
    fixed: torch.Tensor | None = None,
    seed: int | None = None,
    **options,
) -> Iterator[StepEvent]:
    """Yield one ``StepEvent`` per sampling step.

    Takes the arguments of ``generate`` (``output_history`` aside): ``options`` are its sampler
    options (``steps``, ``policy``, ``temperature``, ``block_length``, ``threshold``, ``cache``, ...).
    """
    if model.is_autoregressive:
        raise ValueError("stream() samples diffusion models; an AR model decodes with generate()")
    unknown = sorted(set(options) - set(SamplerSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"unknown sampler options {unknown}; valid: {', '.join(SamplerSettings.__dataclass_fields__)}"
        )
    settings = {name: f.default for name, f in SamplerSettings.__dataclass_fields__.items()}
    settings["steps"] = None
    settings.update(options)
    canvas, sampler, generator, pad_id = _prepare(
        model, input_ids, attention_mask, max_new_tokens, fixed, settings, seed
    )
    was_training = model.training
    model.eval()
    try:
        yield from SamplingRun(model, canvas, sampler, generator, pad_id)
    finally:
        model.train(was_training)


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
    block_length: int | None = None,
    threshold: float | None = None,
    factor: float | None = None,
    cache: str = "none",
    compile: bool = False,
    eos_penalty: float = 0.0,
    eps: float = 1e-3,
    remask_noise: float = 0.5,
) -> GenerationOutput:
    """Fill ``max_new_tokens`` masked positions after each prompt.

    Args:
        input_ids: (B, P) prompts; any padding, marked by ``attention_mask`` (1 = real).
        max_new_tokens: length N of the generation region.
        steps: denoising steps of the fixed schedule (default N, one token per step); split
            over blocks. Ignored by the adaptive ``threshold`` and ``factor`` rules.
        policy: ``random``, ``confidence``, ``margin``, ``entropy`` or ``remask``.
        temperature, top_p, top_k: token proposal; temperature 0 is greedy.
        policy_temperature: > 0 samples positions from softmax(score / it) instead of top-k.
        fixed: (B, N) ids pinned in the generation region (negative = free), for infilling.
        output_history: keep the canvas after every step.
        seed: seeds every random draw of this call.
        block_length: fill the region in semi-autoregressive blocks of this many tokens.
        threshold: commit every position above this probability (and each row's best).
        factor: Fast-dLLM's factor rule instead of a threshold.
        cache: ``none``, ``prefix`` or ``dual`` key/value cache, refreshed at each block.
        compile: capture the per-step forward with ``torch.compile(mode="reduce-overhead")``.
        eos_penalty: strength of the annealed PAD/EOS logit penalty (Dream-Coder); 0 = off.
        eps: the last time of the grid ``linspace(1, eps, steps + 1)``.
        remask_noise: Gumbel scale factor of ``remask`` (noise = remask_noise * t / T).

    An AR model (causal attention) ignores the diffusion options and decodes greedily.
    """
    if model.is_autoregressive:
        from .autoregressive import ar_generate

        return ar_generate(model, input_ids, attention_mask, max_new_tokens=max_new_tokens)
    settings = dict(
        steps=steps,
        policy=policy,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        policy_temperature=policy_temperature,
        eps=eps,
        remask_noise=remask_noise,
        block_length=block_length,
        threshold=threshold,
        factor=factor,
        cache=cache,
        compile=compile,
        eos_penalty=eos_penalty,
    )
    canvas, sampler, generator, pad_id = _prepare(
        model, input_ids, attention_mask, max_new_tokens, fixed, settings, seed
    )
    was_training = model.training
    model.eval()
    device = model.device
    start = time.perf_counter()
    run = SamplingRun(model, canvas, sampler, generator, pad_id)
    history = [canvas.tokens.clone()] if output_history else None
    p0 = canvas.prompt_length
    for event in run:
        if history is not None:
            history.append(torch.cat([canvas.tokens[:, :p0], event.region], dim=1))
    tokens = trim_after_eos(run.tokens, p0, model.config.eos_token_id, pad_id)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - start
    model.train(was_training)
    return GenerationOutput(
        sequences=tokens,
        prompt_length=p0,
        nfe=run.nfe,
        wall_time=wall,
        generated_tokens=count_generated(tokens[:, p0:], model.config.eos_token_id),
        history=history,
    )
