"""``objective: grpo``: RL with verifiable rewards as an objective of dlm's own Trainer.

The Trainer's loop, optimiser, accelerate, adapters, checkpoints and logs stay as they are; this
objective turns a batch of prompts into a policy-gradient loss:

1. every ``rl.inner_steps`` trainer steps (a new batch of prompts), sample ``rl.group_size``
   completions of each prompt with the fast sampler (``dlm.rl.generate_rollouts``), reward them
   with the task's verifier, and compute group-normalised advantages; with ``rl.filter_groups``
   the groups whose rewards are all equal are replaced by copies of informative ones;
2. draw the masked copies of each inner iteration once (``dlm.rl.draw_masks``, from a
   generator seeded by the run's seed and the step) and score the completions under the policy
   that sampled (the *old* log-probabilities) and, with ``rl.kl_beta``, the reference: the same
   masks serve the old, the new and the reference policy;
3. every trainer step: the new per-token log-probabilities under the same masks, and the loss:
   the clipped surrogate (``coupled``, ``one_step``) or wd1's weighted log-likelihood
   (``weighted``), plus ``kl_beta`` times the k3 KL.

The reference policy is the starting model: with an adapter, the base with the adapter
switched off (``dlm.peft.adapter_disabled``); otherwise a frozen copy loaded from
``model.init``. With one inner step the old policy is the current one, so its log-probabilities
are the new ones detached (no extra forward).

Logged: ``reward`` (mean), ``pass_rate`` (share of completions with the full reward),
``informative_groups``, ``clip_fraction``, ``kl``, ``rollouts_per_s``,
``rollout_tokens_per_s``, ``completion_tokens`` (mean scored tokens per completion).
A run resumes at a checkpoint, which always falls between two rollout batches (``save_every``
is a multiple of ``inner_steps``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from transformers import PreTrainedTokenizerBase

from dlm.data import SequenceData
from dlm.models import DiffusionLM
from dlm.rewards import RewardFn
from dlm.rl import (
    EstimatorMasks,
    Rollouts,
    clipped_surrogate,
    draw_masks,
    generate_rollouts,
    group_advantages,
    informative_groups,
    k3_kl,
    masked_mean,
    refill_groups,
    token_logps,
    weighted_likelihood_loss,
)
from dlm.sampling import SamplerSettings
from dlm.tasks import Example

from .config import RLSection
from .objectives import StepLoss

__all__ = ["GRPOObjective", "RolloutBatch"]

#: ``reference(policy)`` -> a context yielding the model that computes the reference policy.
Reference = Callable[[DiffusionLM], contextlib.AbstractContextManager[torch.nn.Module]]


@dataclass
class RolloutBatch:
    """A rewarded rollout batch with everything its inner iterations reuse."""

    rollouts: Rollouts
    advantages: torch.Tensor  # (B,)
    masks: list[EstimatorMasks]  # one per inner iteration
    old: list[torch.Tensor]  # (B, L) old log-probs per inner iteration (empty: not needed)
    reference: list[torch.Tensor]  # (B, L) reference log-probs per inner iteration (or empty)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class GRPOObjective:
    """The Trainer objective of ``objective: grpo`` (see the module docstring)."""

    rl: RLSection
    tokenizer: PreTrainedTokenizerBase
    examples: Sequence[Example]  # the training prompts, indexed by ``SequenceData.index``
    reward: RewardFn
    sampler: SamplerSettings
    seed: int = 0
    reference: Reference | None = None  # needed when rl.kl_beta > 0
    strip_answers: bool = True  # False for code: the reward sees the completion as generated
    #: the held-out loss of the Trainer does not apply to RL
    heldout_loss: ClassVar[bool] = False
    _cache: dict[int, RolloutBatch] = field(default_factory=dict, repr=False)
    _position: tuple[int, int] = field(default=(-1, -1), repr=False)

    @property
    def batch_reuse(self) -> int:
        """The Trainer keeps a batch of prompts for this many steps (one rollout batch)."""
        return self.rl.inner_steps

    def __post_init__(self) -> None:
        if self.rl.kl_beta > 0 and self.reference is None:
            raise ValueError("rl.kl_beta > 0 needs a reference policy")

    # ------------------------------------------------------------------ the step
    def __call__(self, model: DiffusionLM, batch: SequenceData, step: int) -> StepLoss:
        micro = self._micro(step)
        inner = step % self.rl.inner_steps
        if inner == 0 or micro not in self._cache:
            self._cache[micro] = self._collect(model, batch, step, micro)
        group = self._cache[micro]
        rollouts, rl = group.rollouts, self.rl
        new = self._logps(model, rollouts, group.masks[inner])
        scored = rollouts.scored
        metrics: dict[str, float | torch.Tensor] = dict(group.metrics)
        if rl.estimator == "weighted":
            sequence = (new * scored).sum(dim=1)
            loss = weighted_likelihood_loss(sequence, group.advantages, rl.group_size, psi=rl.psi)
        else:
            old = group.old[inner] if group.old else new.detach()
            loss, clip_fraction = clipped_surrogate(
                new,
                old,
                group.advantages,
                scored,
                clip_low=rl.clip_low,
                clip_high=rl.clip_high,
            )
            metrics["clip_fraction"] = clip_fraction
        if rl.kl_beta > 0:
            kl = masked_mean(k3_kl(new, group.reference[inner]), scored)
            loss = loss + rl.kl_beta * kl
            metrics["kl"] = kl.detach()
        return StepLoss(loss, metrics)

    def _micro(self, step: int) -> int:
        """Which micro-batch of ``step`` this call is (0 for the first)."""
        last_step, last_micro = self._position
        micro = last_micro + 1 if step == last_step else 0
        self._position = (step, micro)
        return micro

    def _logps(self, model, rollouts: Rollouts, plan: EstimatorMasks) -> torch.Tensor:
        cfg = getattr(model, "module", model).config
        return token_logps(
            model,
            rollouts.tokens,
            rollouts.attention_mask,
            plan,
            cfg.mask_token_id,
            coupled_weights=self.rl.coupled_weights,
            temperature=self.sampler.temperature,
        )

    # ------------------------------------------------------------------ a rollout batch
    def _collect(self, model, batch: SequenceData, step: int, micro: int) -> RolloutBatch:
        rl = self.rl
        if batch.index is None:
            raise ValueError("GRPO needs the batch's example index (SequenceData.index)")
        policy = getattr(model, "module", model)
        examples = [self.examples[i] for i in batch.index.tolist()]
        rollouts = generate_rollouts(
            policy,
            self.tokenizer,
            examples,
            rl.group_size,
            self.sampler,
            self.reward,
            strip_answers=self.strip_answers,
        )
        metrics = _rollout_metrics(rollouts)
        informative = informative_groups(rollouts.rewards, rl.group_size)
        metrics["informative_groups"] = float(informative.float().mean())
        if rl.filter_groups:
            order = refill_groups(informative)
            rows = (order.unsqueeze(1) * rl.group_size + torch.arange(rl.group_size)).flatten()
            rollouts = rollouts.select(rows)
        advantages = group_advantages(rollouts.rewards, rl.group_size, scale=rl.scale_rewards).to(
            rollouts.tokens.device
        )
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 64 + micro)
        masks = [
            draw_masks(
                rl.estimator,
                rollouts.completion,
                rollouts.prompt,
                generator=generator,
                prompt_mask_prob=rl.prompt_mask_prob,
                t_range=(rl.coupled_t[0], rl.coupled_t[1]),
            )
            for _ in range(rl.inner_steps)
        ]
        old: list[torch.Tensor] = []
        reference: list[torch.Tensor] = []
        with torch.no_grad():
            if rl.inner_steps > 1 and rl.estimator != "weighted":
                old = [self._logps(model, rollouts, plan) for plan in masks]
            if rl.kl_beta > 0:
                assert self.reference is not None
                with self.reference(policy) as ref_model:
                    reference = [self._logps(ref_model, rollouts, plan) for plan in masks]
        return RolloutBatch(rollouts, advantages, masks, old, reference, metrics)


def _rollout_metrics(rollouts: Rollouts) -> dict[str, float]:
    """What a rollout batch is worth logging (host numbers, read once per batch)."""
    rewards = rollouts.rewards
    n, seconds = rewards.numel(), max(rollouts.seconds, 1e-9)
    return {
        "reward": float(rewards.mean()),
        "pass_rate": float((rewards >= rewards.new_tensor(1.0)).float().mean()),
        "rollouts_per_s": n / seconds,
        "rollout_tokens_per_s": rollouts.generated_tokens / seconds,
        "completion_tokens": float(rollouts.scored.sum()) / n,
    }
