"""Group rollouts: ``group_size`` samples of every prompt from the fast sampler, rewarded.

``generate_rollouts`` repeats each prompt ``group_size`` times (consecutive rows form a group),
samples the completions with ``dlm.sampling.generate`` under the run's ``SamplerSettings`` (KV
cache, blocks, thresholds: whatever the settings name), decodes them and asks the reward
function for one reward per completion. The canvas layout is the sampler's: left-padded
prompts, then the generation region. A completion's *scored* tokens are its tokens up to and
including its first EOS (all of them without one); the padding after the EOS is in the masked
region of every estimator's copies (it was masked when sampling began) but carries no loss
(Dream-Coder's ``no_loss_on_pad``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from dlm.data import batch_prompts, decode_answers
from dlm.models import DiffusionLM
from dlm.rewards import RewardFn
from dlm.sampling import SamplerSettings, generate
from dlm.tasks import Example

__all__ = ["Rollouts", "generate_rollouts", "scored_positions"]


@dataclass
class Rollouts:
    """One batch of group rollouts; every tensor's first dimension is the rollout."""

    tokens: torch.Tensor  # (B, P + N) prompt (left-padded) + completion
    attention_mask: torch.Tensor | None  # (B, P + N), None when no prompt is padded
    completion: torch.Tensor  # (B, P + N) bool: the generated positions
    scored: torch.Tensor  # (B, P + N) bool: completion tokens up to and including the EOS
    rewards: torch.Tensor  # (B,) float
    answers: list[str]
    examples: list[Example]
    group_size: int
    seconds: float  # the sampler's wall time
    generated_tokens: int

    @property
    def prompt(self) -> torch.Tensor:
        """(B, P + N) bool: the real prompt tokens."""
        real = (
            torch.ones_like(self.completion)
            if self.attention_mask is None
            else self.attention_mask.bool()
        )
        return real & ~self.completion

    def select(self, rows: torch.Tensor) -> Rollouts:
        """The rollouts at ``rows`` (a host index), in that order."""
        index = rows.tolist()
        mask = self.attention_mask
        device_rows = rows.to(self.tokens.device)
        return Rollouts(
            self.tokens[device_rows],
            None if mask is None else mask[device_rows],
            self.completion[device_rows],
            self.scored[device_rows],
            self.rewards[rows.to(self.rewards.device)],
            [self.answers[i] for i in index],
            [self.examples[i] for i in index],
            self.group_size,
            self.seconds,
            self.generated_tokens,
        )


def scored_positions(region: torch.Tensor, eos_token_id: int | None) -> torch.Tensor:
    """(B, N) bool: each row's tokens up to and including its first EOS (all without one)."""
    if eos_token_id is None:
        return torch.ones_like(region, dtype=torch.bool)
    is_eos = (region == eos_token_id).long()
    after = (is_eos.cumsum(dim=1) - is_eos) > 0
    return ~after


@torch.no_grad()
def generate_rollouts(
    model: DiffusionLM,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[Example],
    group_size: int,
    settings: SamplerSettings,
    reward: RewardFn,
    *,
    strip_answers: bool = True,
) -> Rollouts:
    """``group_size`` completions of each example's prompt, with their rewards (the answer
    texts kept unstripped with ``strip_answers`` off: code continuing an indented prompt)."""
    repeated = [example for example in examples for _ in range(group_size)]
    input_ids, mask = batch_prompts(tokenizer, [e.prompt for e in repeated])
    out = generate(model, input_ids, mask, settings=settings)
    region = out.generated
    answers = decode_answers(tokenizer, region, strip=strip_answers)
    rewards = torch.tensor(reward(repeated, answers), dtype=torch.float32)
    width, p0 = out.sequences.shape[1], out.prompt_length
    completion = torch.zeros(out.sequences.shape, dtype=torch.bool, device=region.device)
    completion[:, p0:] = True
    scored = torch.zeros_like(completion)
    scored[:, p0:] = scored_positions(region, model.config.eos_token_id)
    attention = None
    if not bool(mask.bool().all()):
        attention = torch.ones(len(repeated), width, dtype=torch.long, device=region.device)
        attention[:, :p0] = mask.to(region.device)
    return Rollouts(
        out.sequences,
        attention,
        completion,
        scored,
        rewards,
        answers,
        repeated,
        group_size,
        out.wall_time,
        out.generated_tokens,
    )
