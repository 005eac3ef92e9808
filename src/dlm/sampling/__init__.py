"""Sampling: settings -> canvas -> proposal -> policy -> commit rule -> blocks -> events, batched,
for generation and infilling. ``SamplerSettings`` is the one description of a run; the step
forward (full or cached) is the model's (``DiffusionLM.step_forward``)."""

from .autoregressive import ar_generate
from .blocks import Block, plan_blocks
from .canvas import Canvas, build_canvas, left_pad, trim_after_eos
from .commit import factor_commit, threshold_commit
from .events import StepEvent
from .generate import GenerationOutput, generate, sampling_run, settings_for, stream
from .loop import SamplingRun
from .policies import score_positions, select_top_k
from .proposal import Proposal, filter_logits, penalize_end_tokens, propose
from .schedule import commit_counts, dream_count, dream_ratios, time_grid
from .settings import (
    BLOCK_STARTS,
    CACHE_MODES,
    POLICIES,
    SCHEDULES,
    ResolvedSettings,
    SamplerSettings,
)

__all__ = [
    "BLOCK_STARTS",
    "CACHE_MODES",
    "POLICIES",
    "SCHEDULES",
    "Block",
    "Canvas",
    "GenerationOutput",
    "Proposal",
    "ResolvedSettings",
    "SamplerSettings",
    "SamplingRun",
    "StepEvent",
    "ar_generate",
    "build_canvas",
    "commit_counts",
    "dream_count",
    "dream_ratios",
    "factor_commit",
    "filter_logits",
    "generate",
    "left_pad",
    "penalize_end_tokens",
    "plan_blocks",
    "propose",
    "sampling_run",
    "score_positions",
    "select_top_k",
    "settings_for",
    "stream",
    "threshold_commit",
    "time_grid",
    "trim_after_eos",
]
