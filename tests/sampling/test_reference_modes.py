"""dlm's sampler against plain re-statements of the public reference samplers, token for token.

The reference-style loops live in ``reference_loops.py``; the mapping reference argument -> dlm
setting is ``docs/reference-samplers.md``. Tiny random models: a shifted Qwen2-shaped model for
Dream, an unshifted LLaMA-shaped one for LLaDA. Unless a test says otherwise the model's
[MASK] logit is pinned to -1e4 (on both sides: same weights), because the references may
propose [MASK] and dlm never does (see ``test_dream_mask_token_proposals``).

The stochastic tests seed the reference with ``torch.manual_seed(seed)`` and dlm with
``seed=seed`` plus ``rng="dream"`` / ``rng="llada"`` (``dlm.sampling.reference_rng``): the same
random numbers, drawn in the reference's order and shapes.
"""

from __future__ import annotations

import pytest
import torch

from dlm.errors import SettingsError
from dlm.sampling import SamplerSettings, generate
from helpers import EOS_ID, MASK_ID, PAD_ID, tiny_model
from sampling.reference_loops import (
    Backbone,
    diffusearch_generate_samples,
    dream_counts,
    dream_diffusion_generate,
    fastdllm_dream_block_generate,
    fastdllm_llada_generate,
    llada_generate,
)

# Settings a Dream / LLaDA reproduction passes to dlm (keep the names in one place).
DREAM_EXACT = {"schedule": "dream", "stop_at_eos": False}
LLADA_EXACT = {"stop_at_eos": False}
# Draw random numbers exactly as the reference does: a torch.Generator seeded with ``seed``
# replays the global RNG after torch.manual_seed(seed).
DREAM_RNG = {"rng": "dream"}
LLADA_RNG = {"rng": "llada"}
FASTDLLM_DREAM = {"block_start": "first", "schedule": "dream", "stop_at_eos": False}
# DiffuSearch's (and MGDM's) re-masking decoder: every position re-predicted each step.
DIFFUSEARCH_EXACT = {"policy": "remask", "remask_carry": False, "stop_at_eos": False}

POLICY = {
    "origin": "random",
    "maskgit_plus": "confidence",
    "topk_margin": "margin",
    "entropy": "entropy",
}

def _spread(model, seed):
    """Re-draw the weights with std 0.4: the default init gives near-uniform, tied confidences,
    which would test tie-breaking instead of ranking."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.backbone.parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=g) * 0.4)
    return model


def _logit_edit(model, *, mask=-1e4, eos=0.0):
    """Pin the [MASK] logit (and optionally lift EOS) at the LM head: both samplers see it."""
    head = model.backbone.get_output_embeddings()

    def hook(_module, _inputs, out):
        out = out.clone()
        if mask is not None:
            out[..., MASK_ID] = mask
        out[..., EOS_ID] += eos
        return out

    head.register_forward_hook(hook)
    return model


def dream_model(**edit):
    return _logit_edit(_spread(tiny_model("qwen2", shift=True), 1), **edit)


def diffusearch_model(**edit):
    """DiffuSearch's backbone: a shifted GPT-2 without a causal mask."""
    return _logit_edit(_spread(tiny_model("gpt2", shift=True), 3), **edit)


def llada_model(**edit):
    return _logit_edit(_spread(tiny_model("llama", shift=False), 2), **edit)


def _prompts(batch, length, seed=0):
    return torch.randint(5, 40, (batch, length), generator=torch.Generator().manual_seed(seed))


def _ragged(seed=0):
    """Two left-padded prompts of lengths 5 and 3 and their attention mask."""
    ids = _prompts(2, 5, seed)
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    ids[1, :2] = PAD_ID
    return ids, mask


def _dream_ref(
    model, ids, mask, n, steps, alg, alg_temp=None, temperature=0.0, top_p=None, top_k=None, seed=0
):
    torch.manual_seed(seed)
    return dream_diffusion_generate(
        Backbone(model).raw,
        ids,
        mask,
        n,
        steps,
        1e-3,
        alg,
        alg_temp,
        temperature,
        top_p,
        top_k,
        mask_token_id=MASK_ID,
    )


def _dlm_dream(
    model,
    ids,
    mask,
    n,
    steps,
    alg,
    alg_temp=None,
    temperature=0.0,
    top_p=None,
    top_k=None,
    seed=0,
    **extra,
):
    out = generate(
        model,
        ids,
        mask,
        max_new_tokens=n,
        steps=steps,
        policy=POLICY[alg],
        policy_temperature=alg_temp or 0.0,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        eps=1e-3,
        seed=seed,
        **extra,
    )
    return out.sequences


# ------------------------------------------------------------------ Dream: the schedule
def test_dream_counts_hand_worked():
    # float32 grid linspace(1, 1e-3, 17): t1 = 0.9375625, 16 * (1 - t1) = 0.999 -> 0; the rest
    # commit one each from the current count, and the last step takes the two left.
    assert dream_counts(16, 16) == [0] + [1] * 14 + [2]
    # grid 1, .75025, .5005, .25075: 8 * .24975 = 1.998 -> 1; 7 * .33289 = 2.33 -> 2;
    # 5 * .49900 = 2.495 -> 2; last step: the 3 left (dlm's linear split is 2, 2, 2, 2)
    assert dream_counts(8, 4) == [1, 2, 2, 3]
    assert dream_counts(10, 3) == [3, 3, 4]  # linear: 4, 3, 3
    assert dream_counts(4, 8) == [0, 0, 0, 0, 0, 1, 1, 2]  # five steps commit nothing
    assert dream_counts(12, 1) == [12]


def test_dream_counts_never_match_the_linear_split():
    """Why schedule='dream' is needed: for 1 < steps <= n <= 24 the counts always differ."""
    for n in range(2, 25):
        for steps in range(2, n + 1):
            linear = [n // steps + (1 if i < n % steps else 0) for i in range(steps)]
            assert dream_counts(n, steps) != linear


@pytest.mark.parametrize("n, steps", [(16, 16), (4, 8)])
def test_dlm_dream_schedule_counts(n, steps):
    model = dream_model()
    out = generate(
        model, _prompts(2, 4), max_new_tokens=n, steps=steps, output_history=True, **DREAM_EXACT
    )
    history = out.history
    assert len(history) == steps + 1
    masked = [int((h[0, 4:] == MASK_ID).sum()) for h in history]
    assert [a - b for a, b in zip(masked, masked[1:])] == dream_counts(n, steps)


# ------------------------------------------------------------------ Dream: diffusion_generate
def test_dream_single_step_matches_today():
    """steps=1: every count schedule commits everything at once (passes without new settings)."""
    model = dream_model()
    model.config.eos_token_id = None
    ids = _prompts(2, 5)
    for alg in ("maskgit_plus", "topk_margin", "entropy"):
        ref = _dream_ref(model, ids, None, 8, 1, alg)
        assert torch.equal(_dlm_dream(model, ids, None, 8, 1, alg), ref)


@pytest.mark.parametrize(
    "alg, alg_temp, n, steps",
    [
        ("maskgit_plus", None, 16, 16),
        ("maskgit_plus", 0.0, 12, 5),
        ("topk_margin", None, 8, 4),
        ("topk_margin", 0.0, 16, 16),
        ("entropy", None, 12, 5),
        ("entropy", 0.0, 8, 4),
    ],
)
def test_dream_greedy(alg, alg_temp, n, steps):
    model = dream_model()
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, n, steps, alg, alg_temp)
    assert torch.equal(_dlm_dream(model, ids, None, n, steps, alg, alg_temp, **DREAM_EXACT), ref)


@pytest.mark.parametrize("top_p, top_k", [(None, 5), (0.8, None)])
def test_dream_greedy_filtered(top_p, top_k):
    """Greedy with one filter: the kept set renormalises the confidences on both sides."""
    model = dream_model()
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, 8, 4, "maskgit_plus", top_p=top_p, top_k=top_k)
    assert torch.equal(
        _dlm_dream(model, ids, None, 8, 4, "maskgit_plus", top_p=top_p, top_k=top_k, **DREAM_EXACT),
        ref,
    )


def test_dream_top_p_then_top_k():
    model = dream_model()
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, 8, 4, "maskgit_plus", top_p=0.5, top_k=3)
    assert torch.equal(
        _dlm_dream(model, ids, None, 8, 4, "maskgit_plus", top_p=0.5, top_k=3, **DREAM_EXACT), ref
    )


def test_dream_ragged_left_padded_batch():
    model = dream_model()
    ids, mask = _ragged()
    ref = _dream_ref(model, ids, mask, 8, 4, "maskgit_plus")
    assert torch.equal(_dlm_dream(model, ids, mask, 8, 4, "maskgit_plus", **DREAM_EXACT), ref)


def test_dream_eos_is_an_ordinary_token():
    model = dream_model(eos=3.0)  # EOS is likely: Dream keeps tokens after it
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, 12, 6, "entropy")
    region = ref[:, 4:]
    first = (region == EOS_ID).float().argmax(1)
    assert bool((region == EOS_ID).any(1).all())
    assert any(bool((region[r, first[r] + 1 :] != PAD_ID).any()) for r in range(2))
    assert torch.equal(_dlm_dream(model, ids, None, 12, 6, "entropy", **DREAM_EXACT), ref)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_dream_origin(temperature):
    model = dream_model()
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, 8, 4, "origin", temperature=temperature, seed=3)
    got = _dlm_dream(
        model,
        ids,
        None,
        8,
        4,
        "origin",
        temperature=temperature,
        seed=3,
        **DREAM_EXACT,
        **DREAM_RNG,
    )
    assert torch.equal(got, ref)


@pytest.mark.parametrize(
    "alg, alg_temp, temperature",
    [("maskgit_plus", 0.5, 0.0), ("topk_margin", None, 0.7), ("entropy", 0.3, 0.7)],
)
def test_dream_stochastic(alg, alg_temp, temperature):
    model = dream_model()
    ids = _prompts(2, 4)
    ref = _dream_ref(model, ids, None, 8, 4, alg, alg_temp, temperature, top_p=0.95, seed=4)
    got = _dlm_dream(
        model,
        ids,
        None,
        8,
        4,
        alg,
        alg_temp,
        temperature,
        top_p=0.95,
        seed=4,
        **DREAM_EXACT,
        **DREAM_RNG,
    )
    assert torch.equal(got, ref)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_dream_mask_token_is_never_proposed(temperature):
    """The documented deviation: Dream proposes [MASK] when its logit is the highest (the column
    stays masked); dlm never proposes it, so every position is filled with a real token."""
    model = _spread(tiny_model("qwen2", shift=True), 1)
    head = model.backbone.get_output_embeddings()
    head.register_forward_hook(
        lambda _m, _i, out: out + 6.0 * (torch.arange(out.shape[-1]) == MASK_ID)
    )
    ids = _prompts(2, 4)
    x = torch.nn.functional.pad(ids, (0, 8), value=MASK_ID)
    assert bool((Backbone(model).full(x).argmax(-1) == MASK_ID).any())  # [MASK] often tops
    ref = _dream_ref(model, ids, None, 8, 4, "maskgit_plus", temperature=temperature)
    assert bool((ref[:, 4:] == MASK_ID).any())  # Dream left [MASK] where it proposed it
    got = _dlm_dream(
        model, ids, None, 8, 4, "maskgit_plus", temperature=temperature, **DREAM_EXACT, **DREAM_RNG
    )
    assert not bool((got[:, 4:] == MASK_ID).any())
    assert torch.equal(got[:, :4], ids)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"rng": "dream"}, "schedule='dream'"),
        ({"rng": "dream", "schedule": "dream", "block_length": 4}, "no blocks or cache"),
        ({"rng": "dream", "schedule": "dream", "policy": "remask"}, "remask"),
        ({"rng": "llada", "policy": "margin"}, "low_confidence"),
        ({"rng": "llada", "schedule": "dream"}, "linear"),
        ({"rng": "llada", "top_k": 5}, "top_k"),
        ({"rng": "llada", "policy": "random", "threshold": 0.5}, "policy='confidence'"),
        ({"rng": "llada", "factor": 1.0}, "factor"),
        ({"rng": "mgdm", "policy": "remask"}, "remask_carry=False"),
        ({"rng": "mgdm", "policy": "confidence", "remask_carry": False}, "policy='remask'"),
        ({"rng": "mgdm", **DIFFUSEARCH_EXACT, "temperature": 0.5}, "argmax"),
        ({"remask_carry": False}, "policy='remask'"),
    ],
)
def test_reference_rng_refuses_what_the_reference_never_does(settings, message):
    with pytest.raises(SettingsError, match=message):
        SamplerSettings(**settings)


# ------------------------------------------------------------------ LLaDA generate
def _llada_ref(
    model, ids, mask, steps, n, block, temperature=0.0, remasking="low_confidence", seed=0
):
    torch.manual_seed(seed)
    return llada_generate(
        lambda x, m: model(x, m),
        ids,
        mask,
        steps,
        n,
        block,
        temperature,
        0.0,
        remasking,
        mask_id=MASK_ID,
    )


def _dlm_llada(
    model, ids, mask, steps, n, block, temperature=0.0, policy="confidence", seed=0, **extra
):
    return generate(
        model,
        ids,
        mask,
        max_new_tokens=n,
        steps=steps,
        block_length=block,
        policy=policy,
        temperature=temperature,
        seed=seed,
        **extra,
    )


@pytest.mark.parametrize(
    "steps, n, block, ragged",
    [(12, 12, 4, True), (16, 8, 4, True), (8, 16, 4, False)],
)
def test_llada_low_confidence_blocks(steps, n, block, ragged):
    model = llada_model()
    model.config.eos_token_id = None  # today's equivalent of stop_at_eos=False
    ids, mask = _ragged() if ragged else (_prompts(2, 5), None)
    ref, nfe = _llada_ref(model, ids, mask, steps, n, block)
    out = _dlm_llada(model, ids, mask, steps, n, block)
    assert torch.equal(out.sequences, ref)
    assert out.nfe <= nfe  # dlm ends a block once it is full; LLaDA runs every step


def test_llada_eos_is_an_ordinary_token():
    model = llada_model(eos=3.0)
    ids = _prompts(2, 5)
    ref, _ = _llada_ref(model, ids, None, 8, 16, 4)
    assert bool((ref[:, 5:] == EOS_ID).any())
    assert torch.equal(_dlm_llada(model, ids, None, 8, 16, 4, **LLADA_EXACT).sequences, ref)


@pytest.mark.parametrize(
    "temperature, remasking", [(0.0, "random"), (0.8, "low_confidence"), (0.8, "random")]
)
def test_llada_stochastic(temperature, remasking):
    model = llada_model()
    ids = _prompts(2, 5)
    ref, _ = _llada_ref(model, ids, None, 8, 8, 4, temperature, remasking, seed=5)
    policy = "random" if remasking == "random" else "confidence"
    out = _dlm_llada(
        model, ids, None, 8, 8, 4, temperature, policy, seed=5, **LLADA_EXACT, **LLADA_RNG
    )
    assert torch.equal(out.sequences, ref)


# ------------------------------------------------------------------ Fast-dLLM LLaDA
def _fastdllm_llada(
    model, ids, steps, n, block, threshold=None, cache=None, temperature=0.0,
    remasking="low_confidence", seed=0,
):
    torch.manual_seed(seed)
    return fastdllm_llada_generate(
        Backbone(model),
        ids,
        steps,
        n,
        block,
        temperature,
        remasking,
        mask_id=MASK_ID,
        threshold=threshold,
        cache=cache,
    )


@pytest.mark.parametrize("cache", [None, "prefix", "dual"])
@pytest.mark.parametrize(
    "threshold, steps, n, block",
    [(None, 6, 12, 4), (0.25, 16, 16, 4)],
)
def test_fastdllm_llada(cache, threshold, steps, n, block):
    model = llada_model()
    model.config.eos_token_id = None
    ids = _prompts(1, 5)
    ref, nfe = _fastdllm_llada(model, ids, steps, n, block, threshold, cache)
    out = generate(
        model,
        ids,
        max_new_tokens=n,
        steps=steps,
        block_length=block,
        policy="confidence",
        threshold=threshold,
        cache=cache or "none",
    )
    assert torch.equal(out.sequences, ref)
    if cache is None:
        assert out.nfe == nfe


@pytest.mark.parametrize(
    "cache, threshold, temperature, remasking",
    [
        ("none", 0.3, 0.8, "low_confidence"),
        ("prefix", None, 0.8, "low_confidence"),  # and the prefix loop's discarded draw
        ("prefix", None, 0.0, "random"),
        ("dual", None, 0.8, "random"),
        ("dual", 0.03, 0.8, "low_confidence"),  # block-start passes fill blocks: the idle pass
    ],
)
def test_fastdllm_llada_stochastic(cache, threshold, temperature, remasking):
    """rng='llada' with a cache draws over the window Fast-dLLM feeds (block + suffix for the
    prefix cache, the block for the dual cache; the whole canvas at the block-start pass)."""
    model = llada_model()
    ids = _prompts(1, 5)
    ref, _ = _fastdllm_llada(
        model, ids, 9, 12, 4, threshold, None if cache == "none" else cache, temperature,
        remasking, seed=6,
    )
    out = generate(
        model,
        ids,
        max_new_tokens=12,
        steps=9,
        block_length=4,
        policy="random" if remasking == "random" else "confidence",
        temperature=temperature,
        threshold=threshold,
        cache=cache,
        seed=6,
        **LLADA_EXACT,
        **LLADA_RNG,
    )
    assert torch.equal(out.sequences, ref)


def test_fastdllm_llada_threshold_commits_more_than_one():
    """The threshold comparison above is not vacuous: some pass commits several tokens."""
    model = llada_model()
    ids = _prompts(1, 5)
    _, nfe = _fastdllm_llada(model, ids, 16, 16, 4, 0.25)
    assert nfe < 16


# ------------------------------------------------------------------ Fast-dLLM Dream
def _fastdllm_dream(model, ids, n, steps, block, alg, threshold=0.9, dual=False, alg_temp=None):
    return fastdllm_dream_block_generate(
        Backbone(model),
        ids,
        n,
        steps,
        block,
        1e-3,
        alg,
        alg_temp,
        mask_token_id=MASK_ID,
        threshold=threshold,
        dual_cache=dual,
    )


@pytest.mark.parametrize("dual", [False, True])
@pytest.mark.parametrize("steps, n, block", [(8, 16, 4), (9, 12, 4)])
def test_fastdllm_dream_block_entropy(dual, steps, n, block):
    model = dream_model()
    ids = _prompts(1, 5)
    ref = _fastdllm_dream(model, ids, n, steps, block, "entropy", dual=dual)
    out = generate(
        model,
        ids,
        max_new_tokens=n,
        steps=steps,
        block_length=block,
        policy="entropy",
        cache="dual" if dual else "prefix",
        **FASTDLLM_DREAM,
    )
    assert torch.equal(out.sequences, ref)


@pytest.mark.parametrize("dual", [False, True])
@pytest.mark.parametrize("threshold", [0.2, 0.5])
def test_fastdllm_dream_block_threshold(dual, threshold):
    model = dream_model()
    ids = _prompts(1, 5)
    ref = _fastdllm_dream(model, ids, 16, 16, 4, "confidence_threshold", threshold, dual)
    out = generate(
        model,
        ids,
        max_new_tokens=16,
        steps=16,
        block_length=4,
        policy="confidence",
        threshold=threshold,
        cache="dual" if dual else "prefix",
        block_start="first",
        stop_at_eos=False,
    )
    assert torch.equal(out.sequences, ref)


def test_fastdllm_dream_first_column_is_forced():
    """The reference loop's rule itself: with threshold 1.0 and one step per pass the block's
    first column is filled by the refresh pass with its argmax, whatever its confidence."""
    model = dream_model()
    ids = _prompts(1, 5)
    ref = _fastdllm_dream(model, ids, 8, 8, 4, "confidence_threshold", threshold=1.0)
    bb = Backbone(model)
    x = torch.nn.functional.pad(ids, (0, 8), value=MASK_ID)
    first = bb.full(x)[0, 4].argmax()  # shifted: column 5 reads the output at column 4
    assert int(ref[0, 5]) == int(first)
    assert not bool((ref == MASK_ID).any())


# ------------------------------------------------------------------ DiffuSearch / MGDM re-masking
def _diffusearch_ref(model, ids, n, steps, noise, hold, seed=0):
    canvas = torch.cat([ids, torch.zeros(ids.shape[0], n, dtype=ids.dtype)], dim=1)
    src = torch.zeros(canvas.shape, dtype=torch.bool)
    src[:, : ids.shape[1]] = True
    torch.manual_seed(seed)
    return diffusearch_generate_samples(
        Backbone(model).full, canvas, src, steps, noise=noise, hold_move=hold,
        mask_token_id=MASK_ID,
    )


def _dlm_diffusearch(model, ids, n, steps, noise, hold, seed=0, **extra):
    return generate(
        model,
        ids,
        max_new_tokens=n,
        steps=steps,
        remask_noise=noise or 0.0,
        remask_hold=int(hold),
        seed=seed,
        **DIFFUSEARCH_EXACT,
        **extra,
    ).sequences


@pytest.mark.parametrize("steps, n, hold", [(20, 24, True), (10, 24, True), (7, 13, False)])
def test_diffusearch_deterministic(steps, n, hold):
    model = diffusearch_model()
    ids = _prompts(2, 9, seed=4)
    ref = _diffusearch_ref(model, ids, n, steps, None, hold)
    assert torch.equal(_dlm_diffusearch(model, ids, n, steps, None, hold), ref)


@pytest.mark.parametrize("steps, n, hold, seed", [(20, 24, True, 3), (10, 17, False, 8)])
def test_diffusearch_stochastic(steps, n, hold, seed):
    model = diffusearch_model()
    ids = _prompts(2, 9, seed=5)
    ref = _diffusearch_ref(model, ids, n, steps, 0.5, hold, seed=seed)
    out = _dlm_diffusearch(model, ids, n, steps, 0.5, hold, seed=seed, rng="mgdm")
    assert torch.equal(out, ref)
    # dlm's own Gumbel stream samples the same law with other numbers
    assert not torch.equal(_dlm_diffusearch(model, ids, n, steps, 0.5, hold, seed=seed), ref)


def test_diffusearch_committed_tokens_change_only_without_carry():
    """The reference rewrites a committed token when its prediction changes; dlm's default keeps
    it. On the same weights the two rules give different canvases."""
    model = diffusearch_model()
    ids = _prompts(2, 9, seed=4)
    ref = _diffusearch_ref(model, ids, 24, 20, None, True)
    carried = generate(
        model, ids, max_new_tokens=24, steps=20, policy="remask", remask_noise=0.0,
        remask_hold=1, stop_at_eos=False,
    ).sequences
    assert not torch.equal(carried, ref)
