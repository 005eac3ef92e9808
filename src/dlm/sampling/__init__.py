"""Sampling: canvas -> proposal -> policy -> commit rule -> blocks -> cache -> events, batched,
for generation and infilling."""

from .autoregressive import ar_generate
from .blocks import Block, plan_blocks
from .canvas import Canvas, build_canvas, left_pad, trim_after_eos
from .commit import factor_commit, threshold_commit
from .events import StepEvent
from .forward import CACHE_MODES
from .generate import GenerationOutput, generate, stream
from .loop import SamplerSettings, SamplingRun
from .policies import POLICIES, score_positions, select_top_k
from .proposal import Proposal, filter_logits, penalize_end_tokens, propose
from .schedule import commit_counts, time_grid

__all__ = [
    "CACHE_MODES",
    "POLICIES",
    "Block",
    "Canvas",
    "GenerationOutput",
    "Proposal",
    "SamplerSettings",
    "SamplingRun",
    "StepEvent",
    "ar_generate",
    "build_canvas",
    "commit_counts",
    "factor_commit",
    "filter_logits",
    "generate",
    "left_pad",
    "penalize_end_tokens",
    "plan_blocks",
    "propose",
    "score_positions",
    "select_top_k",
    "stream",
    "threshold_commit",
    "time_grid",
    "trim_after_eos",
]
