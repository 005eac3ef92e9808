"""Plain re-statements of the public reference samplers, for token-for-token tests of dlm.

Each function mirrors one public sampler step by step: the same canvas, time grid (and its
dtype), per-step counts, exclusions, commit rule, shift, and the same random draws in the same
order on torch's global RNG. They are written from reading the reference code, not copied from
it; the precise behaviour each one keeps is listed in ``docs/reference-samplers.md``.

* ``dream_diffusion_generate``: Dream's ``diffusion_generate`` (``DreamGenerationMixin._sample``
  and ``sample_tokens`` in Dream's ``generation_utils.py``, as published with the Dream-v0 7B
  checkpoints and vendored in NVlabs/Fast-dLLM ``dream/model/generation_utils.py``).
* ``llada_generate``: ML-GSAI/LLaDA ``generate.py`` (``generate``, ``get_num_transfer_tokens``,
  ``add_gumbel_noise``).
* ``fastdllm_llada_generate``: NVlabs/Fast-dLLM ``llada/generate.py`` (``generate``,
  ``generate_with_prefix_cache``, ``generate_with_dual_cache``, ``get_transfer_index``).
* ``fastdllm_dream_block_generate``: NVlabs/Fast-dLLM ``dream/model/generation_utils_block.py``
  (``_sample`` with ``block_length``, ``dual_cache`` and ``alg="confidence_threshold"``).
* ``diffusearch_generate_samples``: HKUNLP/DiffuSearch ``src/test_infer_ddm.py``
  (``generate_samples``, ``topk_decoding`` and ``topk_masking``, the re-masking decoder MGDM's
  code also uses), with its held move position.

The model side is a ``Backbone``: raw (unshifted) logits of a dlm model's Hugging Face backbone
for a full canvas, for a window after a prefix cache, or for a block inside a full-length cache
whose block slots are overwritten (Fast-dLLM's ``replace_position``). Keys stay in canvas order,
as in Fast-dLLM.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from dlm.models.attention import set_causal

__all__ = [
    "Backbone",
    "dream_counts",
    "diffusearch_generate_samples",
    "dream_diffusion_generate",
    "fastdllm_dream_block_generate",
    "fastdllm_llada_generate",
    "llada_counts",
    "llada_generate",
]


# ---------------------------------------------------------------------------------- model side
class _SlotCache(DynamicCache):
    """A full-length cache whose ``[lo, hi)`` slots take the fed block's keys/values each call."""

    def __init__(self, kv, lo: int, hi: int) -> None:
        super().__init__()
        self.full, self.lo, self.hi = kv, lo, hi

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        keys, values = self.full[layer_idx]
        keys, values = keys.clone(), values.clone()
        keys[:, :, self.lo : self.hi] = key_states
        values[:, :, self.lo : self.hi] = value_states
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.full[0][0].shape[2] - (self.hi - self.lo)


class Backbone:
    """Raw logits of a dlm model's backbone: full canvas, prefix-cached window, dual-cached block.

    ``attention_mask`` (B, L) pads: the full pass uses a 4-D mask valid_i AND valid_j with
    Dream's position ids (cumsum - 1, pads set to 1) when ``dream_positions``, else dlm's
    convention (pads see themselves, positions cumsum - 1 clamped at 0). Cached passes are for
    unpadded canvases only (Fast-dLLM runs them at batch size 1 without a mask).
    """

    def __init__(self, model) -> None:
        self.model = model
        self.hf = model.backbone
        set_causal(self.hf, False)
        params = inspect.signature(self.hf.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"

    def _call(self, ids, mask=None, positions=None, cache=None, use_cache=False):
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        kwargs["use_cache"] = use_cache
        if cache is not None:
            kwargs[self.cache_arg] = cache
        out = self.hf(**kwargs)
        new = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits, new

    def raw(self, x, mask=None, positions=None):
        """Raw logits for an explicit 4-D boolean mask and position ids (Dream's ``model_fn``)."""
        return self._call(x, mask, positions)[0]

    def full(self, x, attention_mask=None, *, dream_positions=False, use_cache=False):
        """(B, L, V) raw logits of the whole canvas (and its key/value cache)."""
        mask = positions = None
        if attention_mask is not None and bool((attention_mask == 0).any()):
            valid = attention_mask.bool()
            mask = valid[:, None, None, :] & valid[:, None, :, None]
            if dream_positions:
                positions = attention_mask.long().cumsum(-1) - 1
                positions = positions.masked_fill(~valid, 1)
            else:
                eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
                mask = mask | (eye[None, None] & ~valid[:, None, :, None])
                positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._call(x, mask, positions, use_cache=use_cache)
        if not use_cache:
            return logits
        return logits, [(layer.keys, layer.values) for layer in cache.layers]

    def after_prefix(self, tail, kv, start):
        """Raw logits of ``tail`` = x[:, start:] attending to the cached keys of x[:, :start]."""
        cache = DynamicCache()
        for layer, (keys, values) in enumerate(kv):
            cache.update(keys[:, :, :start], values[:, :, :start], layer)
        positions = torch.arange(start, start + tail.shape[1], device=tail.device)
        return self._call(tail, None, positions.expand(tail.shape[0], -1), cache, True)[0]

    def in_place(self, block, kv, start, end):
        """Raw logits of ``block`` = x[:, start:end] attending to the full cache, its slots replaced."""
        cache = _SlotCache(kv, start, end)
        total = kv[0][0].shape[2]
        mask = torch.ones(
            block.shape[0], 1, end - start, total, dtype=torch.bool, device=block.device
        )
        positions = torch.arange(start, end, device=block.device).expand(block.shape[0], -1)
        return self._call(block, mask, positions, cache, True)[0]


def _shift(logits):
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)


# ---------------------------------------------------------------------------------- Dream
def _dream_filter(logits, temperature, top_p, top_k):
    if temperature > 0:
        logits = logits / temperature
    if top_p is not None and top_p < 1:  # nucleus first: drop once the mass BEFORE a token > top_p
        ordered, order = torch.sort(logits, descending=True)
        mass = torch.cumsum(F.softmax(ordered, dim=-1), dim=-1)
        drop = mass > top_p
        drop[..., 1:] = drop[..., :-1].clone()
        drop[..., 0] = False
        drop = torch.zeros_like(drop).scatter(-1, order, drop)
        logits = logits.masked_fill(drop, torch.finfo(logits.dtype).min)
    if top_k is not None:  # then top-k of what is left (ties with the k-th kept)
        kth = torch.topk(logits, min(top_k, logits.shape[-1]))[0][..., -1:]
        logits = logits.masked_fill(logits < kth, torch.finfo(logits.dtype).min)
    return logits


def dream_sample_tokens(logits, temperature=0.0, top_p=None, top_k=None, score="confidence"):
    """Dream's ``sample_tokens``: (score, token) per row of (M, V) logits; draws on the global RNG."""
    probs = torch.softmax(_dream_filter(logits, temperature, top_p, top_k), dim=-1)
    if temperature > 0 and probs.shape[0] > 0:
        # Categorical(probs).sample(): renormalise, one multinomial draw per row
        tokens = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, True).squeeze(-1)
        confidence = probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    else:
        confidence, tokens = probs.max(dim=-1)
    if score == "margin":
        top = torch.sort(probs, dim=-1, descending=True)[0]
        confidence = top[:, 0] - top[:, 1]
    elif score == "entropy":
        confidence = (probs * torch.log(probs + 1e-10)).sum(-1)
    return confidence, tokens


def dream_counts(num_masked: int, steps: int, eps: float = 1e-3) -> list[int]:
    """Dream's per-step counts for a canvas that starts with ``num_masked`` masks (float32)."""
    grid = torch.linspace(1, eps, steps + 1)
    left, out = num_masked, []
    for i in range(steps):
        mean = torch.tensor(left) / 1
        k = int(mean * (1 - grid[i + 1] / grid[i])) if i < steps - 1 else int(mean)
        out.append(k)
        left -= k
    return out


_DREAM_SCORE = {"maskgit_plus": "confidence", "topk_margin": "margin", "entropy": "entropy"}


def _commit_scored(x, mask_index, tokens, confidence, k, alg_temp, mask_id):
    """Dream's position choice: top-k (or softmax(conf / alg_temp) multinomial) over whole rows."""
    full = torch.full(x.shape, float("-inf"), dtype=confidence.dtype, device=x.device)
    full[mask_index] = confidence
    if k <= 0:
        return
    if alg_temp is None or alg_temp == 0:
        index = torch.topk(full, k).indices
    else:
        index = torch.multinomial(F.softmax(full / alg_temp, dim=-1), num_samples=k)
    filler = torch.full_like(x, mask_id)
    filler[mask_index] = tokens
    rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1).expand_as(index)
    x[rows, index] = filler[rows, index]


@torch.no_grad()
def dream_diffusion_generate(
    model_fn,
    input_ids,
    attention_mask,
    max_new_tokens,
    steps,
    eps=1e-3,
    alg="origin",
    alg_temp=None,
    temperature=0.0,
    top_p=None,
    top_k=None,
    *,
    mask_token_id,
):
    """Dream's ``diffusion_generate``: returns the (B, P + max_new_tokens) canvas.

    ``model_fn(x, mask, positions)`` gives raw logits; ``mask``/``positions`` are Dream's 4-D
    boolean mask and ``tok_idx`` when the batch is padded, else None.
    """
    x = F.pad(input_ids, (0, max_new_tokens), value=mask_token_id)
    mask = positions = None
    if attention_mask is not None and bool((attention_mask == 0).any()):
        full = F.pad(attention_mask, (0, max_new_tokens), value=1)
        positions = full.long().cumsum(-1) - 1
        positions = positions.masked_fill(full == 0, 1)
        mask = full.bool()[:, None, None, :] & full.bool()[:, None, :, None]
    grid = torch.linspace(1, eps, steps + 1, device=x.device)  # float32
    for i in range(steps):  # every step calls the model, even one that commits nothing
        mask_index = x == mask_token_id
        logits = _shift(model_fn(x, mask, positions))
        mask_logits = logits[mask_index]  # (M, V), row-major
        t, s = grid[i], grid[i + 1]
        if alg == "origin":
            reveal = 1 - s / t if i < steps - 1 else 1
            x0 = torch.full(
                (mask_logits.shape[0],), mask_token_id, dtype=torch.long, device=x.device
            )
            chosen = torch.rand(x0.shape, device=x.device) < reveal
            if bool(chosen.any()):
                x0[chosen] = dream_sample_tokens(mask_logits[chosen], temperature, top_p, top_k)[1]
            x[mask_index] = x0
            continue
        confidence, x0 = dream_sample_tokens(
            mask_logits, temperature, top_p, top_k, _DREAM_SCORE[alg]
        )
        mean = mask_index.sum() / mask_index.shape[0]
        k = int(mean * (1 - s / t)) if i < steps - 1 else int(mean)
        _commit_scored(x, mask_index, x0, confidence, k, alg_temp, mask_token_id)
    return x


# ---------------------------------------------------------------------------------- LLaDA
def llada_gumbel(logits, temperature):
    """LLaDA's ``add_gumbel_noise``: float64 exp(l) / (-log u) ** T, u on the global RNG."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    noise = torch.rand_like(logits, dtype=torch.float64)
    return logits.exp() / (-torch.log(noise)) ** temperature


def llada_counts(block_masks: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA's ``get_num_transfer_tokens``: per row n // steps, +1 on the first n % steps steps."""
    n = block_masks.sum(dim=1, keepdim=True)
    counts = torch.zeros(n.shape[0], steps, dtype=torch.int64, device=n.device) + n // steps
    for row in range(n.shape[0]):
        counts[row, : int(n[row] % steps)] += 1
    return counts


@torch.no_grad()
def llada_generate(
    model_fn,
    prompt,
    attention_mask=None,
    steps=128,
    gen_length=128,
    block_length=128,
    temperature=0.0,
    cfg_scale=0.0,
    remasking="low_confidence",
    *,
    mask_id,
):
    """ML-GSAI/LLaDA ``generate``; ``model_fn(x, attention_mask)`` gives (unshifted) logits."""
    batch, p0 = prompt.shape
    x = torch.full((batch, p0 + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[:, :p0] = prompt
    if attention_mask is not None:
        attention_mask = torch.cat(
            [attention_mask, torch.ones(batch, gen_length, dtype=attention_mask.dtype)], dim=-1
        )
    prompt_index = x != mask_id
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    steps = steps // num_blocks
    nfe = 0
    for b in range(num_blocks):
        lo, hi = p0 + b * block_length, p0 + (b + 1) * block_length
        counts = llada_counts(x[:, lo:hi] == mask_id, steps)
        for i in range(steps):  # every step calls the model
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                both = model_fn(
                    torch.cat([x, un_x]),
                    None if attention_mask is None else torch.cat([attention_mask] * 2),
                )
                cond, uncond = torch.chunk(both, 2, dim=0)
                logits = uncond + (cfg_scale + 1) * (cond - uncond)
            else:
                logits = model_fn(x, attention_mask)
            nfe += 1
            x0 = torch.argmax(llada_gumbel(logits, temperature), dim=-1)
            if remasking == "low_confidence":
                p = F.softmax(logits, dim=-1)  # the model's dtype, clean logits
                x0_p = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            elif remasking == "random":
                x0_p = torch.rand(x0.shape, device=x0.device)
            else:
                raise NotImplementedError(remasking)
            x0_p[:, hi:] = float("-inf")
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.tensor(float("-inf")))
            transfer = torch.zeros_like(x0, dtype=torch.bool)
            for row in range(batch):
                transfer[row, torch.topk(confidence[row], k=int(counts[row, i])).indices] = True
            x[transfer] = x0[transfer]
    return x, nfe


def _fastdllm_transfer(logits, temperature, remasking, mask_index, x, k, threshold):
    """Fast-dLLM's ``get_transfer_index``: float64 confidences, threshold commits >= tau + best."""
    x0 = torch.argmax(llada_gumbel(logits, temperature), dim=-1)
    if remasking == "low_confidence":
        p = F.softmax(logits.to(torch.float64), dim=-1)
        x0_p = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
    elif remasking == "random":
        x0_p = torch.rand(x0.shape, device=x0.device)
    else:
        raise NotImplementedError(remasking)
    x0 = torch.where(mask_index, x0, x)
    confidence = torch.where(mask_index, x0_p, torch.tensor(float("-inf"), dtype=x0_p.dtype))
    transfer = torch.zeros_like(x0, dtype=torch.bool)
    if threshold is not None:
        k = mask_index.sum(dim=1)
    for row in range(confidence.shape[0]):
        n = int(k[row])
        values, index = torch.topk(confidence[row], k=n)
        transfer[row, index] = True
        if threshold is not None:
            for j in range(1, n):
                if values[j] < threshold:
                    transfer[row, index[j]] = False
    return x0, transfer


@torch.no_grad()
def fastdllm_llada_generate(
    backbone: Backbone,
    prompt,
    steps=128,
    gen_length=128,
    block_length=128,
    temperature=0.0,
    remasking="low_confidence",
    *,
    mask_id,
    threshold=None,
    cache=None,
):
    """Fast-dLLM's LLaDA samplers (batch size 1, no padding mask): ``cache`` None, "prefix", "dual".

    Returns ``(x, nfe)``.
    """
    x = torch.full(
        (1, prompt.shape[1] + gen_length), mask_id, dtype=torch.long, device=prompt.device
    )
    x[:, : prompt.shape[1]] = prompt
    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length
    assert steps % num_blocks == 0
    steps = steps // num_blocks
    nfe = 0
    for b in range(num_blocks):
        start = prompt.shape[1] + b * block_length
        end = start + block_length
        counts = llada_counts(x[:, start:end] == mask_id, steps)

        def k_at(i, counts=counts):
            return None if threshold is not None else counts[:, i]

        if cache is None:
            i = 0
            while True:  # ends as soon as the block is full
                nfe += 1
                mask_index = x == mask_id
                logits = backbone.full(x)
                mask_index[:, end:] = False
                x0, transfer = _fastdllm_transfer(
                    logits, temperature, remasking, mask_index, x, k_at(i), threshold
                )
                x[transfer] = x0[transfer]
                i += 1
                if not bool((x[:, start:end] == mask_id).any()):
                    break
            continue
        # block-start pass: full forward, cache every column
        logits, kv = backbone.full(x, use_cache=True)
        mask_index = x == mask_id
        mask_index[:, end:] = False
        x0, transfer = _fastdllm_transfer(
            logits, temperature, remasking, mask_index, x, k_at(0), threshold
        )
        x[transfer] = x0[transfer]
        nfe += 1
        i = 1
        while True:  # runs at least once, even when the block-start pass filled the block
            nfe += 1
            if cache == "prefix":
                mask_index = x[:, start:] == mask_id
                mask_index[:, block_length:] = False
                logits = backbone.after_prefix(x[:, start:], kv, start)
                llada_gumbel(logits, temperature)  # computed and discarded by the reference
                window = x[:, start:]
            else:
                mask_index = x[:, start:end] == mask_id
                logits = backbone.in_place(x[:, start:end], kv, start, end)
                window = x[:, start:end]
            x0, transfer = _fastdllm_transfer(
                logits, temperature, remasking, mask_index, window, k_at(i), threshold
            )
            window[transfer] = x0[transfer]  # a view of x
            if not bool((x[:, start:end] == mask_id).any()):
                break
            i += 1
    return x, nfe


# ---------------------------------------------------------------------------------- Fast-dLLM Dream
@torch.no_grad()
def fastdllm_dream_block_generate(
    backbone: Backbone,
    input_ids,
    max_new_tokens,
    steps,
    block_length,
    eps=1e-3,
    alg="entropy",
    alg_temp=None,
    temperature=0.0,
    top_p=None,
    top_k=None,
    *,
    mask_token_id,
    threshold=0.9,
    dual_cache=False,
):
    """Fast-dLLM's Dream block sampler (unpadded canvases). ``alg="confidence_threshold"`` uses
    ``threshold``; any other ``alg`` ranks by entropy (as the reference does). Returns x."""
    x = F.pad(input_ids, (0, max_new_tokens), value=mask_token_id)
    p0 = input_ids.shape[1]
    assert max_new_tokens % block_length == 0
    num_blocks = max_new_tokens // block_length
    assert steps % num_blocks == 0
    per_block = steps // num_blocks
    grid = torch.linspace(1, eps, per_block + 1, device=x.device)
    for b in range(num_blocks):
        start = p0 + b * block_length
        end = start + block_length
        logits, kv = backbone.full(x, use_cache=True)
        logits = _shift(logits)
        flat = logits.reshape(-1, logits.shape[-1])  # every column of the canvas
        tokens = dream_sample_tokens(flat, temperature, top_p, top_k)[1].view(x.shape)
        x[:, start] = tokens[:, start]  # the block's first column, unconditionally
        i = 1
        while True:
            if dual_cache:
                window = x[:, start:end]
                mask_index = window == mask_token_id
                logits = _shift(backbone.in_place(window, kv, start, end))
            else:
                window = x[:, start:]
                mask_index = window == mask_token_id
                logits = _shift(backbone.after_prefix(window, kv, start))
            if alg == "confidence_threshold":
                confidence, x0 = dream_sample_tokens(logits[mask_index], temperature, top_p, top_k)
                filler = torch.full_like(window, mask_token_id)
                filler[mask_index] = x0
                full = torch.full(window.shape, float("-inf"), dtype=logits.dtype)
                full[mask_index] = confidence
                full[:, block_length:] = float("-inf")
                n = int((x[:, start:end] == mask_token_id).sum())
                values, index = torch.topk(full, n)
                transfer = torch.zeros_like(window, dtype=torch.bool)
                transfer[0, index[0]] = True
                for j in range(1, n):
                    if values[0, j] < threshold:
                        transfer[0, index[0, j]] = False
                window[transfer] = filler[transfer]
            else:
                if i == per_block:
                    break
                t, s = grid[i], grid[i + 1]
                mask_index[:, block_length:] = False
                confidence, x0 = dream_sample_tokens(
                    logits[mask_index], temperature, top_p, top_k, "entropy"
                )
                mean = mask_index.sum() / mask_index.shape[0]
                k = int(mean * (1 - s / t)) if i < per_block - 1 else int(mean)
                full = torch.full(window.shape, float("-inf"), dtype=logits.dtype)
                full[mask_index] = confidence
                full[:, block_length:] = float("-inf")
                if k > 0:
                    if alg_temp is None or alg_temp == 0:
                        index = torch.topk(full, k).indices
                    else:
                        index = torch.multinomial(F.softmax(full / alg_temp, dim=-1), num_samples=k)
                    filler = torch.full_like(window, mask_token_id)
                    filler[mask_index] = x0
                    rows = torch.arange(x.shape[0]).unsqueeze(1).expand_as(index)
                    window[rows, index] = filler[rows, index]
                i += 1
            if not bool((x[:, start:end] == mask_token_id).any()):
                break
    return x


# ---------------------------------------------------------------------------------- DiffuSearch
def _topk_lowest(scores, cutoff_len, noise_scale):
    """``topk_masking``: the positions whose (noised) score is below the cutoff_len-th lowest."""
    if noise_scale is not None:
        gumbel = -torch.log(-torch.log(torch.rand_like(scores) + 1e-8) + 1e-8)
        scores = scores + noise_scale * gumbel
    cutoff = scores.sort(-1)[0].gather(dim=-1, index=cutoff_len)
    return scores < cutoff


def diffusearch_generate_samples(
    model_fn, x, src_mask, steps, *, noise=0.5, hold_move=True, mask_token_id
):
    """``generate_samples`` with ``decoding_strategy="stochastic<noise>-linear"`` (``noise``
    None: ``"deterministic-linear"``): every target position re-predicted each step, the
    floor(N t / T) lowest-scored re-masked, the move position (the first target) re-masked on
    top until the last step. ``model_fn`` gives unshifted logits; the shift is done here as the
    reference does it."""
    maskable = ~src_mask
    move_position = src_mask.int().argmin(dim=-1, keepdim=True)
    xt = x.masked_fill(maskable, mask_token_id)
    for t in range(steps - 1, -1, -1):
        with torch.no_grad():
            scores = torch.log_softmax(model_fn(xt), dim=-1)
        x0_scores, x0 = scores.max(-1)
        x0 = torch.cat([x[:, :1], x0[:, :-1]], dim=1)
        x0_scores = torch.cat([x0_scores[:, :1], x0_scores[:, :-1]], dim=1)
        x0 = xt.masked_scatter(maskable, x0[maskable])
        if t == 0:
            return x0
        rate = t / steps
        cutoff_len = (maskable.sum(1, keepdim=True) * rate).long()
        ranked = x0_scores.masked_fill(~maskable, 1000.0)
        lowest = _topk_lowest(ranked, cutoff_len, None if noise is None else noise * rate)
        xt = x0.masked_fill(lowest, mask_token_id)
        if hold_move:
            xt[:, move_position] = mask_token_id
    return xt
