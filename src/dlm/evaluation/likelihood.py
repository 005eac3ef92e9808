"""Likelihood of text under a masked diffusion LM: a Monte Carlo ELBO and a perplexity bound.

A masked diffusion LM gives no exact likelihood, only the evidence lower bound of its
training loss. For a continuation x of L tokens after a clean prefix c, the ELBO is

    ELBO(x | c) = sum_{l=1}^{L} (1/l) E_{M : |M| = l} [ sum_{i in M} log p(x_i | c, x with M masked) ]

where M is a uniformly random set of l continuation positions replaced by [MASK] (the prefix
is never masked). It equals the any-order autoregressive average E_sigma[sum_k log p(x_sigma(k)
| c, x_sigma(<k))], so by Jensen it is at most log p(x | c) for the model's distribution.

**Estimator (LLaDA's, from SMDM's evaluation).** Each of ``mc_num`` samples draws a number of
masked tokens l uniform in {1..L}, masks l continuation positions chosen uniformly without
replacement, runs one forward pass and scores ``(L / l) * sum_{i in M} log p(x_i | ...)``.
It is unbiased: E_l[(L/l) E_M[.]] = sum_l (1/L)(L/l) E_M[.], exactly the sum above. The
continuous-time form of MDLM and Dream (t ~ U(0, 1), each token masked with probability t,
weight 1/t) has the same expectation, because integral_0^1 (1/t) C(L,l) t^l (1-t)^(L-l) dt
= 1/l and, given l masked tokens, their positions are uniform; but its weight is unbounded
near t = 0 (its second moment grows like log(1/eps), so Dream floors the masking rate at
eps, which biases it slightly), whereas L/l <= L. Hence the discrete form here.

**Stratification.** The levels of one pair are spread evenly: l_j = ((k + floor(j L / n)) mod
L) + 1 for j < n = mc_num, with one shared offset k uniform in {0..L-1}. Every l_j is still
uniform on {1..L} on its own, so each sample (and their mean) stays unbiased; when n is a
multiple of L each level appears exactly n / L times. (LLaDA rounds ``k + j L / n`` with
``torch.round``, whose round-half-to-even makes a few levels slightly more likely; the floor
avoids that.) The standard error is the i.i.d. formula std / sqrt(n); stratification removes
part of the between-level variance, so it is conservative for the stratified mean (the tests
check it against the seed-to-seed spread).

A model with causal attention (``DiffusionLM`` with ``attention="causal"``, the AR twin) gets
its exact log-likelihood from one forward pass instead, with a standard error of zero.

Every pair draws its masks from its own generator seeded by (``seed``, pair index), so the
estimates do not depend on ``batch_size`` or on the other pairs in the call.

With ``progress=True`` the Monte Carlo passes draw a bar on stderr (batches done) when stderr
is a terminal; in a pipe or a log, and with ``progress=False`` (the default), there is none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from dlm.errors import DlmUserError
from dlm.models import denoising_logits, eval_mode

__all__ = [
    "ElboEstimate",
    "elbo",
    "elbo_samples",
    "masking_levels",
    "perplexity_bound",
    "sample_masks",
    "start_token_id",
    "text_windows",
]

Pair = tuple[Sequence[int], Sequence[int]]


@dataclass(frozen=True)
class ElboEstimate:
    """A Monte Carlo ELBO of one continuation, in nats (a lower bound on its log-likelihood)."""

    elbo: float
    stderr: float
    tokens: int  # continuation length L
    mc_num: int  # samples averaged (1 for an exact AR score)
    exact: bool = False  # True for a causal model's exact log-likelihood

    @property
    def nll(self) -> float:
        """The matching upper bound on the negative log-likelihood."""
        return -self.elbo


# ---------------------------------------------------------------------------- sampling masks
def masking_levels(
    length: int, mc_num: int, generator: torch.Generator, *, stratified: bool = True
) -> torch.Tensor:
    """``mc_num`` numbers of masked tokens, each uniform on {1..length} (long tensor)."""
    if length < 1:
        raise ValueError(f"a continuation needs at least one token to mask; got length {length}")
    if not stratified:
        return torch.randint(1, length + 1, (mc_num,), generator=generator)
    offset = torch.randint(0, length, (1,), generator=generator)
    spread = torch.div(torch.arange(mc_num) * length, mc_num, rounding_mode="floor")
    return (offset + spread) % length + 1


def sample_masks(length: int, levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A (n, length) bool mask whose row j has exactly ``levels[j]`` True at uniform positions."""
    scores = torch.rand(levels.shape[0], length, generator=generator)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return ranks < levels.unsqueeze(1)


def _pair_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63 - 1))


# ---------------------------------------------------------------------------- batching rows
@dataclass
class _Piece:
    """Consecutive MC rows of one pair: clean ids, which positions are masked, row weights."""

    pair: int
    clean: torch.Tensor  # (T,)
    masked: torch.Tensor  # (k, T) bool
    weight: torch.Tensor  # (k,) float64

    def split(self, k: int) -> tuple[_Piece, _Piece]:
        head = _Piece(self.pair, self.clean, self.masked[:k], self.weight[:k])
        return head, _Piece(self.pair, self.clean, self.masked[k:], self.weight[k:])


def _pieces(
    pairs: Sequence[Pair], order: Iterable[int], mc_num: int, seed: int, stratified: bool
) -> Iterator[_Piece]:
    for index in order:
        prefix, continuation = pairs[index]
        length = len(continuation)
        generator = _pair_generator(seed, index)
        levels = masking_levels(length, mc_num, generator, stratified=stratified)
        cont_mask = sample_masks(length, levels, generator)
        masked = torch.cat([torch.zeros(mc_num, len(prefix), dtype=torch.bool), cont_mask], 1)
        clean = torch.tensor([*prefix, *continuation], dtype=torch.long)
        yield _Piece(index, clean, masked, length / levels.double())


def _chunks(pieces: Iterator[_Piece], batch_size: int) -> Iterator[list[_Piece]]:
    """Group pieces into lists of at most ``batch_size`` rows, splitting pieces as needed."""
    batch: list[_Piece] = []
    rows = 0
    for piece in pieces:
        while piece.weight.numel():
            room = batch_size - rows
            head, piece = piece.split(room)
            batch.append(head)
            rows += head.weight.numel()
            if rows == batch_size:
                yield batch
                batch, rows = [], 0
    if batch:
        yield batch


def _left_pad(rows: Sequence[torch.Tensor], fill: Any) -> torch.Tensor:
    width = max(r.shape[-1] for r in rows)
    return torch.stack([F.pad(r, (width - r.shape[-1], 0), value=fill) for r in rows])


# ---------------------------------------------------------------------------- model access
def _device(model: nn.Module) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _fill_id(model: nn.Module) -> int:
    return int(getattr(model.config, "fill_token_id", 0) or 0)


@torch.no_grad()
def _score_chunk(model: nn.Module, chunk: list[_Piece], mask_id: int) -> list[torch.Tensor]:
    """Per-row weighted log-likelihood sums of one batch, one float64 tensor per piece."""
    device = _device(model)
    counts = torch.tensor([p.weight.numel() for p in chunk])
    clean = _left_pad([p.clean for p in chunk], _fill_id(model)).repeat_interleave(counts, 0)
    real = _left_pad([torch.ones_like(p.clean) for p in chunk], 0).repeat_interleave(counts, 0)
    masked = _left_pad([m for p in chunk for m in p.masked], False)
    clean, masked, real = clean.to(device), masked.to(device), real.to(device)
    noisy = torch.where(masked, torch.full_like(clean, mask_id), clean)
    logits = denoising_logits(model, noisy, real, clean)
    picked = logits[masked].float()  # (n_masked, V): only masked positions are upcast
    logp = -F.cross_entropy(picked, clean[masked], reduction="none")
    sums = torch.zeros(clean.shape[0], dtype=torch.float64, device=device)
    sums.index_add_(0, masked.nonzero()[:, 0], logp.double())
    weights = torch.cat([p.weight for p in chunk]).to(device)
    return list((sums * weights).cpu().split(counts.tolist()))


@torch.no_grad()
def _exact_ar(model: nn.Module, pairs: Sequence[Pair], batch_size: int) -> list[float]:
    """log p(continuation | prefix) of a causal model: one forward pass, no masking."""
    device, fill = _device(model), _fill_id(model)
    order = [i for i in range(len(pairs)) if len(pairs[i][1])]
    order.sort(key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    out = [0.0] * len(pairs)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        seqs = [torch.tensor([*pairs[i][0], *pairs[i][1]], dtype=torch.long) for i in chunk]
        ids = _left_pad(seqs, fill).to(device)
        real = _left_pad([torch.ones_like(s) for s in seqs], 0).to(device)
        logits = model(ids, real)
        for row, i in enumerate(chunk):
            n = len(pairs[i][1])
            logp = torch.log_softmax(logits[row, -n:].float(), dim=-1)
            out[i] = float(logp.gather(1, ids[row, -n:, None]).double().sum())
    return out


# ---------------------------------------------------------------------------- public API
def elbo_samples(
    model: nn.Module,
    pairs: Sequence[Pair],
    *,
    mc_num: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    stratified: bool = True,
    progress: bool = False,
) -> list[torch.Tensor]:
    """The ``mc_num`` per-sample ELBO values (float64, CPU) of every (prefix, continuation) pair.

    ``pairs`` hold token ids; the prefix stays clean, only continuation tokens are masked.
    ``batch_size`` is the number of rows (pair x sample) per forward pass; pairs are processed
    longest first so that rows of similar length share a batch. ``model`` is a ``DiffusionLM``
    or any module called as ``model(input_ids, attention_mask)`` returning aligned logits, with
    ``config.mask_token_id``. An empty continuation scores exactly 0. A causal model returns
    its exact log-likelihood as a one-element tensor. ``progress``: a bar over the batches on
    a terminal (see the module docstring).
    """
    if mc_num < 1:
        raise DlmUserError(f"mc_num (--mc-num) must be at least 1; got {mc_num}")
    if batch_size < 1:
        raise DlmUserError(f"batch_size (--batch-size) must be at least 1; got {batch_size}")
    with eval_mode(model):
        if getattr(model, "is_autoregressive", False):
            exact = _exact_ar(model, pairs, batch_size)
            return [torch.tensor([v], dtype=torch.float64) for v in exact]
        return _mc_samples(model, pairs, mc_num, batch_size, seed, stratified, progress)


def _mc_samples(
    model: nn.Module,
    pairs: Sequence[Pair],
    mc_num: int,
    batch_size: int,
    seed: int,
    stratified: bool,
    progress: bool,
) -> list[torch.Tensor]:
    mask_id = int(model.config.mask_token_id)
    order = [i for i in range(len(pairs)) if len(pairs[i][1])]
    order.sort(key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    parts: dict[int, list[torch.Tensor]] = {i: [] for i in order}
    chunks: Iterable[list[_Piece]] = _chunks(
        _pieces(pairs, order, mc_num, seed, stratified), batch_size
    )
    if progress:
        chunks = _progress_bar(chunks, math.ceil(len(order) * mc_num / batch_size))
    for chunk in chunks:
        for piece, values in zip(chunk, _score_chunk(model, chunk, mask_id), strict=True):
            parts[piece.pair].append(values)
    zero = torch.zeros(mc_num, dtype=torch.float64)
    return [torch.cat(parts[i]) if i in parts else zero for i in range(len(pairs))]


def _progress_bar(chunks: Iterable[list[_Piece]], total: int) -> Iterable[list[_Piece]]:
    """``chunks`` behind a tqdm bar on stderr; disable=None: drawn on a terminal only."""
    from tqdm.auto import tqdm

    return tqdm(chunks, total=total, desc="ELBO", unit="batch", disable=None, dynamic_ncols=True)


def _summary(values: torch.Tensor, tokens: int, exact: bool) -> ElboEstimate:
    n = values.numel()
    if exact or tokens == 0:
        stderr = 0.0
    elif n > 1:
        stderr = float(values.std(unbiased=True)) / math.sqrt(n)
    else:
        stderr = math.nan
    return ElboEstimate(float(values.mean()), stderr, tokens, n, exact)


def elbo(
    model: nn.Module,
    pairs: Sequence[Pair],
    *,
    mc_num: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    stratified: bool = True,
    progress: bool = False,
) -> list[ElboEstimate]:
    """The Monte Carlo ELBO of each continuation given its prefix, with its standard error.

    See the module docstring for the estimator; the arguments are those of ``elbo_samples``.
    """
    samples = elbo_samples(
        model,
        pairs,
        mc_num=mc_num,
        batch_size=batch_size,
        seed=seed,
        stratified=stratified,
        progress=progress,
    )
    exact = bool(getattr(model, "is_autoregressive", False))
    return [
        _summary(values, len(pair[1]), exact) for values, pair in zip(samples, pairs, strict=True)
    ]


def start_token_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The token a document starts after: EOS (documents are joined with EOS in pretraining),
    else BOS, else None (no prefix)."""
    for token_id in (tokenizer.eos_token_id, tokenizer.bos_token_id):
        if token_id is not None:
            return int(token_id)
    return None


def text_windows(
    ids: Sequence[int], seq_len: int, start_id: int | None, context: int = 0
) -> list[Pair]:
    """Cut one document into (prefix, continuation) windows of at most ``seq_len`` tokens.

    Every token is scored exactly once. The first window's prefix is the start token (none
    when ``start_id`` is None). With ``context`` = 0 every later window also conditions on the
    start token alone (independent chunks, as MDLM's chunked perplexity); with ``context`` =
    c > 0 it conditions on the c tokens before it (a tighter bound, more windows).
    """
    if not 0 <= context < seq_len:
        raise DlmUserError(f"context (--context) must lie in [0, seq_len={seq_len}); got {context}")
    start = [] if start_id is None else [int(start_id)]
    if seq_len <= len(start):
        raise DlmUserError(f"seq_len (--seq-len) must exceed the start token; got {seq_len}")
    windows: list[Pair] = []
    pos = 0
    while pos < len(ids):
        prefix = list(ids[pos - context : pos]) if pos and context else start
        end = min(len(ids), pos + seq_len - len(prefix))
        windows.append((prefix, list(ids[pos:end])))
        pos = end
    return windows


def perplexity_bound(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    seq_len: int,
    mc_num: int = 128,
    *,
    batch_size: int = 32,
    context: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Per-token NLL upper bound and perplexity bound exp(NLL) of ``texts``.

    Each text is tokenized without special tokens and cut by ``text_windows``; the ELBOs of
    all windows are summed. ``nll_stderr`` combines the windows' independent standard errors;
    ``perplexity_stderr`` is its delta-method image exp(NLL) * stderr. ``progress``: a bar
    over the Monte Carlo batches on a terminal.
    """
    start = start_token_id(tokenizer)
    windows: list[Pair] = []
    documents = 0
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if ids:
            documents += 1
            windows.extend(text_windows(ids, seq_len, start, context))
    if not windows:
        raise DlmUserError("no text to score: every text is empty; give a file with some text")
    estimates = elbo(
        model, windows, mc_num=mc_num, batch_size=batch_size, seed=seed, progress=progress
    )
    tokens = sum(e.tokens for e in estimates)
    nll = -sum(e.elbo for e in estimates) / tokens
    nll_stderr = math.sqrt(sum(e.stderr**2 for e in estimates)) / tokens
    perplexity = math.exp(nll)
    return {
        "nll": nll,
        "nll_stderr": nll_stderr,
        "perplexity": perplexity,
        "perplexity_stderr": perplexity * nll_stderr,
        "tokens": tokens,
        "windows": len(windows),
        "documents": documents,
        "seq_len": seq_len,
        "context": context,
        "mc_num": estimates[0].mc_num,
        "exact": estimates[0].exact,
    }
