"""Which masked positions to commit: the scoring policies and a batched top-k selector.

* ``random``  (Dream ``origin``): every masked position is revealed with probability 1 - s/t;
  handled by the loop, it needs no score.
* ``confidence`` (Dream ``maskgit_plus``): probability of the proposed token.
* ``margin`` (Dream ``topk_margin``): p1 - p2 of the proposal distribution.
* ``entropy``: sum p log(p + 1e-10) (negative entropy, Dream's formula; higher = more certain).
* ``remask`` (MGDM / DiffuSearch easy-first): re-predict every target position each step and
  re-mask the floor(N t / T) least confident; handled by its own loop.

``select_top_k`` picks a different number of positions in every row without a Python loop.
"""

from __future__ import annotations

import torch

from .proposal import Proposal
from .settings import POLICIES

__all__ = ["POLICIES", "score_positions", "select_top_k", "gumbel_like"]


def score_positions(policy: str, proposal: Proposal) -> torch.Tensor:
    """(B, N) scores, higher = commit sooner."""
    if policy == "confidence":
        return proposal.confidence
    if policy == "margin":
        top2 = torch.topk(proposal.probs, 2, dim=-1).values
        return top2[..., 0] - top2[..., 1]
    if policy == "entropy":
        p = proposal.probs
        return (p * torch.log(p + 1e-10)).sum(-1)
    raise ValueError(
        f"policy {policy!r} has no position score; scored policies: confidence, margin, entropy"
    )


def gumbel_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=torch.float32)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))


def select_top_k(
    scores: torch.Tensor,
    eligible: torch.Tensor,
    k: torch.Tensor | None,
    *,
    kmax: int | None = None,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A (B, N) bool mask with the ``k[b]`` best eligible positions of each row.

    ``k`` None with ``kmax=1``: the best eligible position of every row that has one.
    ``kmax`` is a bound on ``k`` the caller knows without reading the device (the sampler's
    block width, or its schedule's largest count); without it ``k.max()`` is read, which is a
    host synchronisation. With ``temperature`` > 0, positions are drawn without replacement
    from softmax(scores / temperature) (Gumbel top-k) instead of taken greedily.
    """
    if scores.dtype != torch.float32:
        scores = scores.float()
    if temperature > 0:
        scores = scores / temperature + gumbel_like(scores, generator)
    scores = scores.masked_fill(~eligible, float("-inf"))
    if kmax is None:
        kmax = int(k.max()) if k.numel() else 0
    kmax = min(kmax, scores.shape[1])
    if kmax == 1:  # one position per row (one token per step); topk breaks ties as references do
        best = torch.topk(scores, 1, dim=1).indices
        take = True if k is None else (k > 0).unsqueeze(1)  # k None: every row that can
        return torch.zeros_like(eligible).scatter(1, best, take) & eligible
    if kmax <= 0:
        return torch.zeros_like(eligible)
    top = torch.topk(scores, kmax, dim=1).indices
    take = torch.arange(kmax, device=scores.device).unsqueeze(0) < k.unsqueeze(1)
    chosen = torch.zeros_like(eligible).scatter(1, top, take)
    return chosen & eligible
