"""Sampling: canvas -> proposal -> policy -> schedule -> commit, batched, for generation and infilling."""

from .autoregressive import ar_generate
from .canvas import Canvas, build_canvas, left_pad, trim_after_eos
from .generate import GenerationOutput, generate
from .policies import POLICIES, score_positions, select_top_k
from .proposal import Proposal, filter_logits, propose
from .schedule import commit_counts, time_grid

__all__ = [
    "POLICIES",
    "Canvas",
    "GenerationOutput",
    "Proposal",
    "ar_generate",
    "build_canvas",
    "commit_counts",
    "filter_logits",
    "generate",
    "left_pad",
    "propose",
    "score_positions",
    "select_top_k",
    "time_grid",
    "trim_after_eos",
]
