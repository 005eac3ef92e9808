"""``generate`` and ``stream``: one sampling loop for generation and infilling.

    from dlm.sampling import SamplerSettings, generate
    out = generate(model, input_ids, attention_mask, max_new_tokens=64, policy="margin")
    out = generate(model, input_ids, settings=SamplerSettings(max_new_tokens=64, steps=32))

A step: forward (maybe cached) -> propose tokens (temperature, top-p, top-k) -> score positions
(policy) -> decide how many to commit (schedule, threshold or factor) -> commit -> event ->
check stopping. Every operation is batched over rows; counts, thresholds and the split of the
steps over blocks are per row. A row stops when it holds an EOS with nothing masked before it
(the rest becomes padding, pinned tokens excepted), unless ``stop_at_eos`` is off.

A row's result does not depend on its batch mates when nothing is drawn at random (temperature
0, a policy other than ``random``, ``policy_temperature`` 0): each row gets the tokens it gets
alone, up to floating-point differences of the model's forward between batch shapes (a near-tie
can flip). Random draws come from one stream for the whole batch, so with a seed a stochastic
row's draws depend on its position in the batch and on the batch's shape.

The settings of a call are resolved once (``settings_for``): keyword arguments over the given
``settings`` (or, without one, over the checkpoint's ``generation_defaults``) over the library
defaults. With the reference switches (``schedule="dream"``, ``stop_at_eos=False``,
``block_start="first"``) the loop reproduces Dream's ``diffusion_generate``, LLaDA's
``generate`` and Fast-dLLM's samplers token for token on the same weights;
``docs/reference-samplers.md`` maps each reference argument to its setting and lists the
deliberate deviations of the defaults.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from dlm.errors import DlmUserError, SettingsError
from dlm.models.modes import eval_mode

from .canvas import Canvas, build_canvas
from .events import StepEvent
from .loop import SamplingRun
from .settings import SamplerSettings

if TYPE_CHECKING:
    from dlm.models import DiffusionLM

__all__ = ["GenerationOutput", "generate", "sampling_run", "settings_for", "stream"]


@dataclass
class GenerationOutput:
    """Sampled canvases and what producing them cost."""

    sequences: torch.Tensor  # (B, P + N): left-padded prompt, then the generated region
    prompt_length: int
    nfe: int  # forward passes of the model
    wall_time: float  # seconds
    generated_tokens: int  # tokens up to and including each row's EOS (not padding)
    history: list[torch.Tensor] | None = field(default=None, repr=False)
    settings: SamplerSettings | None = field(default=None, repr=False)

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


def settings_for(
    model: DiffusionLM, settings: SamplerSettings | None = None, **options: Any
) -> SamplerSettings:
    """The settings of one call: ``options`` over ``settings`` or the checkpoint's defaults."""
    if settings is None:
        return SamplerSettings.resolve(options, checkpoint=model.generation_defaults).settings
    if not isinstance(settings, SamplerSettings):
        raise SettingsError(
            f"settings must be a SamplerSettings; got {type(settings).__name__} (pass a mapping's "
            "items as keyword arguments, or SamplerSettings(**mapping))"
        )
    return settings.replace(**options)


def check_ids(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    fixed: torch.Tensor | None,
) -> None:
    """Refuse ids outside the model's vocabulary before any forward (one host read per call).

    ``input_ids`` are checked where ``attention_mask`` marks real tokens (padding is replaced
    anyway); ``fixed`` where it pins a token (negative ids are free positions), and it may not
    pin the mask id (that position would stay masked).
    """
    vocab = model.vocab_size
    real = input_ids
    if attention_mask is not None and attention_mask.shape == input_ids.shape:
        real = input_ids.masked_fill(~attention_mask.to(input_ids.device).bool(), 0)
    parts = [real.amin(), real.amax()] if real.numel() else []
    mask_id = model.config.mask_token_id
    if fixed is not None and fixed.numel():
        pinned = fixed.to(input_ids.device)
        parts += [(pinned == mask_id).any().long(), pinned.amax()]
    if not parts:
        return
    values = torch.stack([p.long() for p in parts]).tolist()  # the call's one read
    if real.numel() and not (values[0] >= 0 and values[1] < vocab):
        bad = values[0] if values[0] < 0 else values[1]
        raise DlmUserError(
            f"input_ids holds id {bad}, outside the model's vocabulary: ids must be in "
            f"[0, {vocab})"
        )
    if fixed is not None and fixed.numel() and values[-2]:
        raise DlmUserError(
            f"fixed pins the mask id {mask_id}, which would leave [MASK] in the output: give a "
            "negative id for a position the sampler should fill"
        )
    if fixed is not None and fixed.numel() and values[-1] >= vocab:
        raise DlmUserError(
            f"fixed holds id {values[-1]}, outside the model's vocabulary: pinned ids must be "
            f"in [0, {vocab}) (a negative id marks a position the sampler fills)"
        )


def _prepare(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    fixed: torch.Tensor | None,
    settings: SamplerSettings,
) -> tuple[Canvas, torch.Generator | None]:
    if settings.max_new_tokens is None:
        raise SettingsError("give max_new_tokens: the length of the generation region")
    check_ids(model, input_ids, attention_mask, fixed)
    cfg = model.config
    device = model.device
    canvas = build_canvas(
        input_ids.to(device),
        None if attention_mask is None else attention_mask.to(device),
        settings.max_new_tokens,
        mask_token_id=cfg.mask_token_id,
        pad_token_id=cfg.fill_token_id,
        fixed=None if fixed is None else fixed.to(device),
        block_size=cfg.block_size if cfg.attention == "block_causal" else None,
    )
    prompt = canvas.standard_prompt_length
    total, limit = prompt + canvas.new_tokens, model.max_positions
    if limit is not None and total > limit:
        raise SettingsError(
            f"prompt ({prompt} tokens) + max_new_tokens ({settings.max_new_tokens}) "
            f"= {total} exceeds the model's {limit} positions; shorten the prompt or lower "
            "max_new_tokens"
        )
    aligned = canvas.alignment
    if aligned is not None and cfg.shift and int(aligned.prompt_lengths.min()) == 0:
        raise DlmUserError(
            "a shifted block-diffusion model predicts each block's first token from the token "
            "before it, so every prompt needs at least one token (add a BOS token to empty "
            "prompts)"
        )
    seed = settings.seed
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    return canvas, generator


def sampling_run(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    settings: SamplerSettings,
    fixed: torch.Tensor | None = None,
    emit: bool = True,
    step_forward: Callable[..., Any] | None = None,
) -> SamplingRun:
    """The checked canvas and run of one ``stream`` call, to be iterated (under ``no_grad``
    and in eval mode) by a caller that drives runs itself: a server runs one per request,
    its forward batched with the others' through ``step_forward``."""
    if model.is_autoregressive:
        raise SettingsError(
            "stream() samples diffusion models; an AR model decodes with generate()"
        )
    canvas, generator = _prepare(model, input_ids, attention_mask, fixed, settings)
    pad_id = model.config.fill_token_id
    return SamplingRun(model, canvas, settings, generator, pad_id, emit=emit, step_forward=step_forward)


@torch.no_grad()
def stream(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    settings: SamplerSettings | None = None,
    fixed: torch.Tensor | None = None,
    **options: Any,
) -> Iterator[StepEvent]:
    """Yield one ``StepEvent`` per sampling step; takes the arguments of ``generate``."""
    if model.is_autoregressive:
        raise SettingsError(
            "stream() samples diffusion models; an AR model decodes with generate()"
        )
    settings = settings_for(model, settings, **options)
    run = sampling_run(model, input_ids, attention_mask, settings=settings, fixed=fixed)
    with eval_mode(model):
        yield from run


@torch.no_grad()
def generate(
    model: DiffusionLM,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    settings: SamplerSettings | None = None,
    fixed: torch.Tensor | None = None,
    output_history: bool = False,
    **options: Any,
) -> GenerationOutput:
    """Fill ``max_new_tokens`` masked positions after each prompt.

    Args:
        input_ids: (B, P) prompts; any padding, marked by ``attention_mask`` (1 = real).
        settings: a ``SamplerSettings``; without one, the checkpoint's ``generation_defaults``
            and the library defaults fill what ``options`` leave out.
        fixed: (B, N) ids pinned in the generation region (negative = free), for infilling.
        output_history: keep the canvas after every step.
        **options: any ``SamplerSettings`` field (``max_new_tokens``, ``steps``, ``policy``,
            ``temperature``, ``block_length``, ``threshold``, ``cache``, ``seed``, ...),
            laid over ``settings``; ``None`` means "not given".

    An AR model (causal attention) ignores the diffusion options and decodes greedily.

    With EOS stopping (``stop_at_eos``, the default) every position after a row's ending EOS
    becomes padding except the pinned ones, which always keep their tokens; ``stream``'s last
    event holds the same region. Ids outside the model's vocabulary in ``input_ids`` or
    ``fixed`` are a ``DlmUserError`` before any forward. Each row's result is independent of
    its batch mates for deterministic settings (see the module docstring); stochastic rows
    share one random stream.
    """
    settings = settings_for(model, settings, **options)
    if model.is_autoregressive:
        from .autoregressive import ar_generate

        if settings.max_new_tokens is None:
            raise SettingsError("give max_new_tokens: the length of the generation region")
        if fixed is not None:
            raise DlmUserError(
                "fixed (pinned tokens) needs a diffusion model; an AR model only continues the "
                "prompt: drop fixed, or sample from a diffusion checkpoint"
            )
        check_ids(model, input_ids, attention_mask, None)
        return ar_generate(model, input_ids, attention_mask, max_new_tokens=settings.max_new_tokens)
    canvas, generator = _prepare(model, input_ids, attention_mask, fixed, settings)
    pad_id, device = model.config.fill_token_id, model.device
    p0 = canvas.standard_prompt_length
    with eval_mode(model):
        start = time.perf_counter()
        run = SamplingRun(model, canvas, settings, generator, pad_id, emit=output_history)
        history = [canvas.standard(canvas.tokens, pad_id)] if output_history else None
        for event in run:
            history.append(torch.cat([history[0][:, :p0], event.region], dim=1))
        tokens = run.sequences  # EOS stopping's padding is written by the loop (``finish_rows``)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - start
    eos = model.config.eos_token_id if settings.stop_at_eos else None
    return GenerationOutput(
        sequences=tokens,
        prompt_length=p0,
        nfe=run.nfe,
        wall_time=wall,
        generated_tokens=count_generated(tokens[:, p0:], eos),
        history=history,
        settings=settings,
    )
