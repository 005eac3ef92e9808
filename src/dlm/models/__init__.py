"""Models: ``DiffusionLM`` (HF backbone + diffusion fields), attention modes, tiny backbones."""

from .attention import ATTENTION_MODES, anneal_ratio, block_size_at, build_attention
from .backbones import ARCHITECTURES, backbone_config, build_backbone
from .diffusion_lm import (
    DLM_CONFIG_NAME,
    DiffusionConfig,
    DiffusionLM,
    NotADlmCheckpointError,
    denoising_logits,
)
from .modes import eval_mode
from .pooled import PooledStepForward, ragged_step_logits
from .quiet import quiet_libraries

__all__ = [
    "ARCHITECTURES",
    "ATTENTION_MODES",
    "DLM_CONFIG_NAME",
    "DiffusionConfig",
    "DiffusionLM",
    "NotADlmCheckpointError",
    "PooledStepForward",
    "anneal_ratio",
    "backbone_config",
    "block_size_at",
    "build_attention",
    "build_backbone",
    "denoising_logits",
    "eval_mode",
    "quiet_libraries",
    "ragged_step_logits",
]
