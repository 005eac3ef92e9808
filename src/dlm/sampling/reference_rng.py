"""Random draws made as the reference samplers make them (``SamplerSettings.rng``).

dlm's own draws (``rng="dlm"``) are batched over a block: an exponential race for tokens, Gumbel
top-k for positions, reveal steps pre-drawn for ``policy="random"``. They sample the same laws
as the references but not the same numbers. The functions here make, on the run's generator,
the same calls in the same order and shapes as the references make on torch's global RNG, so a
seeded run (a fresh ``torch.Generator(device).manual_seed(seed)``, whose stream on a CPU is the
global one after ``torch.manual_seed(seed)``) reproduces a stochastic reference run token for
token. Written from reading the references (see ``docs/reference-samplers.md``), not copied:

* ``rng="dream"`` mirrors ``DreamGenerationMixin._sample`` / ``sample_tokens`` of Dream's
  ``generation_utils.py``: ``dream_reveal`` is ``alg="origin"``'s ``torch.rand(M) < 1 - s/t``
  over the masked positions in row-major order; ``dream_tokens`` is ``sample_tokens``'s
  ``Categorical(probs).sample()`` (one ``torch.multinomial`` draw per row, over the masked rows,
  or for ``origin`` over the revealed ones only); ``dream_positions`` is the ``alg_temp > 0``
  ``torch.multinomial(softmax(confidence / alg_temp), k)`` over whole canvas rows.
* ``rng="llada"`` mirrors ML-GSAI/LLaDA ``generate.py``: ``llada_tokens`` is ``add_gumbel_noise``
  (float64 uniforms over the logits of the whole canvas, argmax of exp(l) / (-log u) ** T) and
  ``llada_uniform`` is ``remasking="random"``'s ``torch.rand((B, L))``, drawn after it. With a
  cache, Fast-dLLM's ``llada/generate.py`` draws over the window it fed instead (``fed_window``),
  and its prefix-cache loop draws one Gumbel noise more per cached step and throws it away.
* ``rng="mgdm"`` mirrors ``topk_masking`` of HKUNLP's MGDM and DiffuSearch decoders (read in
  DiffuSearch's ``src/test_infer_ddm.py``): ``mgdm_gumbel`` is its ``torch.rand_like(scores)``
  over the whole (B, L) canvas, prompt included, turned into ``-log(-log(u + 1e-8) + 1e-8)``.

The step forward gives logits for the block's columns only; a reference draw that spans the
whole fed width is made at that width and the block's columns are sliced out of it. The mask
token stays excluded from the proposals (dlm's deliberate deviation), so the drawn token is the
reference's whenever the reference does not draw [MASK] itself.
"""

from __future__ import annotations

import torch

from .proposal import Proposal

__all__ = [
    "dream_positions",
    "dream_reveal",
    "dream_tokens",
    "fed_window",
    "llada_tokens",
    "llada_uniform",
    "mgdm_gumbel",
]


# ---------------------------------------------------------------------------------- Dream
def dream_reveal(eligible: torch.Tensor, ratio: torch.Tensor | float, generator) -> torch.Tensor:
    """(B, n) bool: ``alg="origin"``'s reveals, one float32 uniform per masked position (row
    major) compared with ``ratio`` (the float32 ``1 - s/t``; 1 on the last step)."""
    chosen = torch.zeros_like(eligible)
    u = torch.rand(int(eligible.sum()), generator=generator, device=eligible.device)
    chosen[eligible] = u < ratio
    return chosen


def dream_tokens(proposal: Proposal, rows: torch.Tensor, generator) -> Proposal:
    """Draw the tokens of the ``rows`` (B, n) positions as ``sample_tokens`` does: one
    ``torch.multinomial(p / p.sum(), 1, replacement=True)`` over the (K, V) row-major rows; the
    confidence is the drawn token's (unrenormalised) probability."""
    probs = proposal.probs[rows]
    if probs.shape[0] == 0:  # Dream draws nothing for an empty batch of rows
        return proposal
    drawn = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, True, generator=generator)
    tokens = proposal.tokens.clone()
    tokens[rows] = drawn.squeeze(-1)
    confidence = proposal.probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return Proposal(tokens, confidence, proposal.probs)


def dream_positions(
    scores: torch.Tensor,
    eligible: torch.Tensor,
    k: int,
    temperature: float,
    start: int,
    width: int,
    generator,
) -> torch.Tensor:
    """(B, n) bool: ``alg_temp > 0``'s k positions, drawn without replacement from
    softmax(score / alg_temp) over the whole (B, width) canvas row (-inf off the block's masks)."""
    batch, n = eligible.shape
    full = scores.new_full((batch, width), float("-inf"))
    full[:, start : start + n] = scores.masked_fill(~eligible, float("-inf"))
    index = torch.multinomial(torch.softmax(full / temperature, -1), k, generator=generator)
    picked = torch.zeros((batch, width), dtype=torch.bool, device=eligible.device)
    return picked.scatter_(1, index, True)[:, start : start + n] & eligible


# ---------------------------------------------------------------------------------- LLaDA
def fed_window(cache: str, step: int, start: int, end: int, length: int) -> tuple[int, int]:
    """(width, offset of the block in it) of the logits a LLaDA-family reference draws over at
    ``step`` of the block [start, end): the whole canvas (LLaDA, Fast-dLLM's block-start pass),
    the block and everything after it (Fast-dLLM prefix cache) or the block (dual cache)."""
    if cache == "none" or step == 0:
        return length, start
    return (length - start if cache == "prefix" else end - start), 0


def llada_tokens(
    proposal: Proposal,
    logits: torch.Tensor,
    temperature: float,
    window: tuple[int, int],
    mask_token_id: int | None,
    generator,
    *,
    discard: int = 0,
) -> Proposal:
    """``add_gumbel_noise`` + argmax: float64 uniforms of shape (B, width, V), the block's
    columns sliced at the window's offset; the token is argmax exp(l) / (-log u) ** T and its
    confidence the clean softmax probability (``proposal`` is the temperature-free one).
    ``discard`` draws of the same shape come first and are thrown away (Fast-dLLM prefix)."""
    batch, n, vocab = logits.shape
    width, offset = window
    shape = (batch, width, vocab)
    for _ in range(discard):
        torch.rand(shape, dtype=torch.float64, generator=generator, device=logits.device)
    u = torch.rand(shape, dtype=torch.float64, generator=generator, device=logits.device)
    noisy = logits.double().exp() / (-torch.log(u[:, offset : offset + n])) ** temperature
    if mask_token_id is not None:
        noisy[..., mask_token_id] = -1.0  # never proposed (all other values are >= 0)
    tokens = noisy.argmax(-1)
    confidence = proposal.probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return Proposal(tokens, confidence, proposal.probs)


def llada_uniform(eligible: torch.Tensor, window: tuple[int, int], generator) -> torch.Tensor:
    """(B, n) scores of ``remasking="random"``: ``torch.rand((B, width))`` (float32), sliced."""
    width, offset = window
    u = torch.rand((eligible.shape[0], width), generator=generator, device=eligible.device)
    return u[:, offset : offset + eligible.shape[1]]


# ---------------------------------------------------------------------------------- MGDM
def mgdm_gumbel(batch: int, width: int, start: int, generator, device) -> torch.Tensor:
    """(B, width - start) Gumbel noise of ``topk_masking``: one float32 uniform per position of
    the whole (B, width) canvas, ``-log(-log(u + 1e-8) + 1e-8)``, the generated columns kept."""
    u = torch.rand((batch, width), generator=generator, device=device)
    return (-torch.log(-torch.log(u + 1e-8) + 1e-8))[:, start:]
