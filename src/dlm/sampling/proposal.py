"""Token proposal: turn logits at masked positions into candidate tokens and their probabilities.

Order of operations as Dream's ``sample_tokens``: divide by the temperature (when > 0), keep
the top-p nucleus (a token is dropped when the probability mass before it exceeds p), then the
top-k, softmax; then sample (temperature > 0) or take the argmax. The mask token is never
proposed (a deliberate deviation: Dream, LLaDA and Fast-dLLM can propose it, which a trained
model gives next to no probability; see docs/reference-samplers.md). Sampling uses the exponential race argmax(p / E), E ~ Exp(1), which is
exact categorical sampling, batched, and reproducible under a ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Proposal", "filter_logits", "penalize_end_tokens", "propose"]


@dataclass
class Proposal:
    tokens: torch.Tensor  # (B, N) proposed token per position
    confidence: torch.Tensor  # (B, N) probability of the proposed token
    probs: torch.Tensor  # (B, N, V) the filtered distribution


def filter_logits(
    logits: torch.Tensor, temperature: float, top_p: float | None, top_k: int | None
) -> torch.Tensor:
    """Temperature, then top-p, then top-k filtering (float32, -inf outside the kept set)."""
    if logits.dtype != torch.float32:
        logits = logits.float()
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        drop_sorted = probs.cumsum(-1) - probs > top_p  # the mass before it; the top token stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


def propose(
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    mask_token_id: int | None = None,
    generator: torch.Generator | None = None,
    sample: bool = True,
) -> Proposal:
    """Propose one token per position from (B, N, V) logits.

    ``sample=False`` keeps the argmax even with a temperature: the caller draws the tokens
    itself from ``probs`` (``reference_rng``'s reference-stream draws)."""
    # float32; the same tensor when nothing filters float32 logits (the step owns them)
    logits = filter_logits(logits, temperature, top_p, top_k)
    if mask_token_id is not None:
        logits[..., mask_token_id] = float("-inf")
    probs = torch.softmax(logits, dim=-1)
    if temperature > 0 and sample:
        race = torch.empty_like(probs).exponential_(1.0, generator=generator)
        tokens = (probs / race).argmax(dim=-1)
        confidence = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, tokens = probs.max(dim=-1)
    return Proposal(tokens, confidence, probs)


def penalize_end_tokens(
    logits: torch.Tensor,
    token_ids: list[int] | torch.Tensor,
    strength: float,
    masked_fraction: torch.Tensor,
) -> torch.Tensor:
    """Dream-Coder's annealed PAD/EOS penalty: add strength * log(1 - t + 1e-3) to their logits.

    ``t`` is each row's fraction of the generation region still masked, so the penalty is
    about -6.9 * strength on an empty canvas and vanishes as the canvas fills.
    """
    if strength == 0.0 or len(token_ids) == 0:
        return logits
    penalty = strength * torch.log(1.0 - masked_fraction.float() + 1e-3)  # (B,)
    logits = logits.clone()
    ids = token_ids
    if not isinstance(ids, torch.Tensor):
        ids = torch.tensor(sorted(set(token_ids)), device=logits.device)
    logits[..., ids] += penalty.to(logits.dtype).view(-1, 1, 1)
    return logits
