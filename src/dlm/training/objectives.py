"""Objectives: turn a batch into a loss. ``pretrain`` and ``sft`` share the masked-diffusion
objective (they differ only in which positions the data marks noisable); ``ar`` is the
next-token baseline on the same backbone with causal attention.

A ``block_causal`` model trains every block in one forward over the noisy copy and the clean
sequence (``DiffusionLM.block_denoising_forward``), at the block size of the step (annealed
from 1 over ``model.anneal_steps``, ``block_size_at``); its CART context is what each block
sees. ``complementary`` (Fast-dLLM v2, LLaDA 2.0; any attention mode) trains each row twice,
masked at t and on the complement at 1 - t, so every noisable token carries loss once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from dlm.config import ConfigError
from dlm.data import SequenceData
from dlm.diffusion import (
    NoiseSchedule,
    apply_mask,
    complementary_masks,
    loss_weights,
    make_schedule,
    mask_tokens,
    masked_diffusion_loss,
    sample_times,
)
from dlm.models import DiffusionLM, anneal_ratio, block_size_at, eval_mode

from .config import TrainConfig
from .scheduled_sampling import ScheduledSampling, own_prediction_inputs

__all__ = ["StepLoss", "DiffusionObjective", "AutoregressiveObjective", "build_objective"]


@dataclass
class StepLoss:
    loss: torch.Tensor
    metrics: dict[str, float | torch.Tensor] = field(
        default_factory=dict
    )  # tensors: read at log steps


@dataclass
class DiffusionObjective:
    """Mask the noisable region at a random time, predict the clean tokens, weight the CE."""

    schedule: NoiseSchedule
    weighting: str = "elbo"
    eps: float = 1e-3
    stratified: bool = True
    cart_p: float = 0.1
    token_reweight: tuple[float, float] | None = None
    scheduled: ScheduledSampling | None = None
    complementary: bool = False

    def __call__(self, model: DiffusionLM, batch: SequenceData, step: int) -> StepLoss:
        x = batch.input_ids
        attention_mask = batch.attention_mask
        cfg = _config(model)
        t = sample_times(
            x.shape[0], self.schedule, eps=self.eps, stratified=self.stratified, device=x.device
        )
        if self.complementary:  # the row at t, then the same row masked on the complement
            mask_a, _, mask_b, t_b = complementary_masks(batch.noisable, self.schedule.mask_prob(t))
            masked = torch.cat([mask_a, mask_b])
            t = torch.cat([t, t_b.clamp(min=self.eps)])  # the complement's weight stays bounded
            x = torch.cat([x, x])
            attention_mask = None if attention_mask is None else attention_mask.repeat(2, 1)
            noisy, p = apply_mask(x, masked, cfg.mask_token_id), self.schedule.mask_prob(t)
        else:
            p = self.schedule.mask_prob(t)
            noisy, masked = mask_tokens(x, batch.noisable, p, cfg.mask_token_id)
        ratio = anneal_ratio(step, cfg.anneal_steps) if cfg.attention == "annealed" else None
        block = None
        if cfg.attention == "block_causal":
            block = block_size_at(step, cfg.block_size, cfg.anneal_steps)
        replaced = None
        if self.scheduled is not None:
            noisy, masked, replaced = self._own_predictions(model, batch, p, noisy, masked, step)
        clean = x if block is not None else None
        logits = model(noisy, attention_mask, anneal_ratio=ratio, clean=clean, block_size=block)
        weights = loss_weights(
            self.weighting, t, masked, self.schedule, cart_p=self.cart_p, block_size=block
        )
        out = masked_diffusion_loss(logits, x, masked, weights, token_reweight=self.token_reweight)
        metrics = {"ce": out.ce, "masked_tokens": out.num_masked}
        if ratio is not None:
            metrics["anneal_ratio"] = ratio
        if block is not None and cfg.anneal_steps:
            metrics["block_size"] = block
        if replaced is not None:
            metrics["own_prediction_rows"] = replaced.float().mean()
        return StepLoss(out.loss, metrics)

    def _own_predictions(self, model, batch, p, noisy, masked, step):
        """Rebuild the scheduled-sampling rows from the model's own decoding (DoT)."""
        sched = self.scheduled
        rows = sched.rows_to_replace(noisy.shape[0], step, noisy.device)
        if not bool(rows.any()):
            return noisy, masked, rows
        cfg = _config(model)
        mask = None if batch.attention_mask is None else batch.attention_mask[rows]
        with eval_mode(model):
            own, own_masked = own_prediction_inputs(
                model,
                batch.input_ids[rows],
                batch.noisable[rows],
                mask,
                p[rows],
                cfg.mask_token_id,
                sched.sampler_steps,
            )
        noisy, masked = noisy.clone(), masked.clone()
        noisy[rows], masked[rows] = own, own_masked
        return noisy, masked, rows


@dataclass
class AutoregressiveObjective:
    """Next-token cross-entropy on the positions of ``loss_mask`` (causal attention, shift on)."""

    def __call__(self, model: DiffusionLM, batch: SequenceData, step: int) -> StepLoss:
        logits = model(batch.input_ids, batch.attention_mask)  # aligned: logits[i] predicts token i
        targets = batch.input_ids.masked_fill(~batch.loss_mask, -100)
        targets[:, 0] = -100  # the first token has no left context to be predicted from
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100)
        return StepLoss(loss, {"ce": loss.detach()})


def _config(model):
    return getattr(model, "module", model).config


def build_objective(config: TrainConfig):
    """The objective a config names."""
    if config.objective == "ar":
        return AutoregressiveObjective()
    if config.objective == "grpo":
        raise ConfigError(
            "objective grpo needs the task, the tokenizer and the model: build it with "
            "dlm.training.setup.build_grpo (dlm.training.train does)"
        )
    d = config.diffusion
    schedule = make_schedule(d.schedule, d.num_steps)
    if d.weighting == "linear" and schedule.num_steps is None:
        raise ConfigError(
            "diffusion.weighting=linear (w = T - t + 1) needs diffusion.schedule=discrete and "
            "diffusion.num_steps=T"
        )
    reweight = (d.reweight_alpha, d.reweight_beta) if d.token_reweight else None
    scheduled = None
    if d.scheduled_min_prob < 1.0:
        scheduled = ScheduledSampling(
            d.scheduled_min_prob,
            d.scheduled_ramp_steps or config.optim.max_steps,
            d.scheduled_sampler_steps,
        )
    return DiffusionObjective(
        schedule, d.weighting, d.eps, d.stratified, d.cart_p, reweight, scheduled, d.complementary
    )
