"""Pure tensor maths of masked diffusion: schedules, times, masking, weights, loss.

No model and no I/O: every function here is unit-tested against numbers computed by hand.
"""

from .loss import MaskedLoss, masked_diffusion_loss, token_cross_entropy
from .masking import apply_mask, complementary_masks, mask_tokens
from .schedules import (
    CosineSchedule,
    DiscreteSchedule,
    LinearSchedule,
    NoiseSchedule,
    make_schedule,
)
from .timesteps import DEFAULT_EPS, sample_times
from .weights import WEIGHTINGS, cart_weights, loss_weights, sequence_weights, token_reweighting

__all__ = [
    "DEFAULT_EPS",
    "WEIGHTINGS",
    "CosineSchedule",
    "DiscreteSchedule",
    "LinearSchedule",
    "MaskedLoss",
    "NoiseSchedule",
    "apply_mask",
    "cart_weights",
    "complementary_masks",
    "loss_weights",
    "make_schedule",
    "mask_tokens",
    "masked_diffusion_loss",
    "sample_times",
    "sequence_weights",
    "token_cross_entropy",
    "token_reweighting",
]
