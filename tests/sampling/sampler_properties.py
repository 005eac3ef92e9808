"""Random sampler calls and the properties every call must have, in one place.

``tests/sampling/test_fuzz.py`` runs a short seeded sweep in CI and ``benchmarks/sampler_fuzz.py``
a long one; both call ``run_fuzz``. ``draw_call`` draws one ``generate`` call on a tiny random
model: batch size, ragged prompts (left or right padding), max_new_tokens, policy, schedule,
steps, block length and start, threshold or factor, cache, pinned tokens (scattered, suffixes,
whole blocks pinned in some rows, rows pinned whole, pinned EOS), temperature, top-p / top-k,
policy temperature, EOS penalty and stopping, the reference ``rng`` modes, seed. A draw the
settings refuse is drawn again. ``check_call`` runs it and checks (``run_fuzz`` counts an
exception as a violation of ``runs``: a call the settings accept must run):

* ``no_mask``: no [MASK] left in the generation region;
* ``prompt``: the (left-padded) prompt block holds the prompt, padding where it was padded;
* ``pinned``: every pinned token is unchanged;
* ``eos``: with EOS stopping, after a row's first EOS in the region there is only padding and
  pinned tokens;
* ``seed``: the same call again (with ``output_history``) gives the same canvas and NFE;
* ``history``: the last history entry is the returned canvas;
* ``stream``: ``stream``'s last event holds ``generate``'s region, at the same NFE;
* ``alone`` (deterministic settings only: temperature 0, a policy other than ``random``,
  ``policy_temperature`` 0, no re-mask noise): each row equals that row run alone (its own
  prompt without padding, its own pinned tokens). Stochastic settings are excluded on purpose:
  a batch shares one random stream, so a row's draws depend on its position in the batch.

Floating point: a row alone has another padding width and batch shape, and the tiny models'
forward is not bitwise invariant to those on a CPU (float32 logits differ by ~1e-7, float64
ones by ~1e-16). So the models run in float64 (``model.double()``): the sampler scores in
float32, a 1e-16 relative difference changes the float32 value only about once in 1e8 to 1e9
values, and then flips an order or an argmax only at a near-tie of 1e-7, which a sweep of
thousands of calls is not expected to meet (the benchmark's 3000-call runs have not).
The weights are redrawn with std 0.3 so that confidences spread over (0.1, 0.95) instead of
the default init's near-uniform, nearly tied ones (a test of tie-breaking, not of the sampler),
and the EOS logit is raised so that rows do end at an EOS.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch

from dlm.errors import SettingsError
from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone
from dlm.sampling import SamplerSettings, generate, stream

VOCAB = 40
MASK_ID, PAD_ID, EOS_ID = 2, 0, 3
#: (architecture, shifted logits)
MODEL_KINDS = (("gpt2", True), ("llama", False), ("qwen2", True))
PROPERTIES = ("runs", "no_mask", "prompt", "pinned", "eos", "seed", "history", "stream", "alone")
TOKENS = [t for t in range(1, VOCAB) if t != MASK_ID]  # prompt and pinned ids (PAD/EOS included)


def build_model(arch: str, shift: bool, seed: int = 0, eos_bias: float = 2.0) -> DiffusionLM:
    """A float64 two-layer model of width 32 with spread weights and a raised EOS logit."""
    config = backbone_config(
        arch, vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, max_positions=64
    )
    backbone = build_backbone(config, seed=seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for param in backbone.parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.3)
    bias = torch.zeros(VOCAB, dtype=torch.float64)
    bias[EOS_ID] = eos_bias
    backbone.get_output_embeddings().register_forward_hook(lambda _m, _i, out: out + bias)
    cfg = DiffusionConfig(
        mask_token_id=MASK_ID, shift=shift, pad_token_id=PAD_ID, eos_token_id=EOS_ID
    )
    return DiffusionLM(backbone, cfg).double().eval()


def model_name(arch: str, shift: bool) -> str:
    return arch if shift else f"{arch}-unshifted"


def build_models() -> dict[str, DiffusionLM]:
    return {model_name(arch, shift): build_model(arch, shift) for arch, shift in MODEL_KINDS}


@dataclass
class Call:
    """One drawn sampler call."""

    model: str
    input_ids: torch.Tensor  # (B, P), padded on ``side`` where ``attention_mask`` is 0
    attention_mask: torch.Tensor | None
    lengths: list[int]
    side: str
    fixed: torch.Tensor | None  # (B, N), negative = free
    options: dict[str, Any]
    features: set[str] = field(default_factory=set)

    def rows(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Each row's own prompt (1, length) and pinned tokens (1, N), unpadded."""
        out = []
        for b, n in enumerate(self.lengths):
            ids = self.input_ids[b]
            real = ids[-n:] if self.side == "left" else ids[:n]
            out.append((real.unsqueeze(0), None if self.fixed is None else self.fixed[b : b + 1]))
        return out

    def describe(self) -> str:
        fixed = None if self.fixed is None else self.fixed.tolist()
        mask = None if self.attention_mask is None else self.attention_mask.tolist()
        return (
            f"model={self.model} input_ids={self.input_ids.tolist()} attention_mask={mask} "
            f"fixed={fixed} options={self.options}"
        )


def deterministic(options: dict[str, Any]) -> bool:
    """Nothing in the call is drawn at random."""
    policy = options.get("policy", "confidence")
    return (
        options.get("temperature", 0.0) == 0
        and policy != "random"
        and options.get("policy_temperature", 0.0) == 0
        and not (policy == "remask" and options.get("remask_noise", 0.5) > 0)
    )


def _draw_options(rng: random.Random, n_new: int) -> dict[str, Any]:
    o: dict[str, Any] = {"max_new_tokens": n_new, "seed": rng.randrange(2**31)}
    o["policy"] = rng.choice(["confidence", "confidence", "margin", "entropy", "random", "remask"])
    remask = o["policy"] == "remask"
    if not remask and rng.random() < 0.6:
        o["block_length"] = rng.randint(1, n_new)
    blocks = -(-n_new // o.get("block_length", n_new))
    if rng.random() < 0.7:
        o["steps"] = rng.randint(blocks, n_new + 3)
    if rng.random() < 0.3:
        o["schedule"] = "dream"
    if not remask and rng.random() < 0.3:
        o["block_start"] = "first"
    if not remask and o.get("schedule") != "dream":
        pick = rng.random()
        if pick < 0.2:
            o["threshold"] = rng.choice([0.0, 0.3, 0.6, 0.9, 1.0, rng.random()])
        elif pick < 0.3:
            o["factor"] = rng.choice([0.5, 1.0, 2.0, rng.uniform(0.1, 4.0)])
    if not remask:
        o["cache"] = rng.choice(["none", "none", "prefix", "dual"])
    if rng.random() < 0.35:
        o["temperature"] = rng.choice([0.5, 1.0, rng.uniform(0.1, 2.0)])
        if rng.random() < 0.3:
            o["top_p"] = rng.choice([0.5, 0.9])
        if rng.random() < 0.3:
            o["top_k"] = rng.choice([1, 3, 10])
    if rng.random() < 0.15:
        o["policy_temperature"] = rng.choice([0.1, 1.0])
    if remask:
        o["remask_noise"] = rng.choice([0.0, 0.0, 0.5])
    if rng.random() < 0.2:
        o["eos_penalty"] = rng.choice([0.5, 2.0])
    if rng.random() < 0.2:
        o["stop_at_eos"] = False
    if rng.random() < 0.15:  # the reference draws, with what they need
        o["rng"] = rng.choice(["dream", "llada"])
        _fit_reference_rng(o, rng)
    return o


def _fit_reference_rng(o: dict[str, Any], rng: random.Random) -> None:
    """Change ``o`` into settings ``rng`` dream / llada accept (``SamplerSettings``' rules)."""
    for name in ("factor", "top_p", "top_k"):
        o.pop(name, None)
    o["block_start"] = "any"
    if o["policy"] == "remask":
        o["policy"] = "confidence"
        o.pop("remask_noise", None)
    if o["rng"] == "dream":
        o["schedule"] = "dream"
        for name in ("block_length", "threshold"):
            o.pop(name, None)
        o["cache"] = "none"
        return
    o["policy"] = rng.choice(["confidence", "random"])
    o["schedule"] = "linear"
    o.pop("policy_temperature", None)
    if o["policy"] == "random":
        o.pop("threshold", None)
    o.setdefault("cache", "none")


def _draw_fixed(
    rng: random.Random, batch: int, n_new: int, block: int | None
) -> torch.Tensor | None:
    """Pinned tokens: none, scattered, suffixes, whole blocks in some rows, whole rows."""
    kind = rng.choice(["none", "none", "scatter", "suffix", "blocks", "blocks", "mixed"])
    if kind == "none":
        return None
    fixed = torch.full((batch, n_new), -1, dtype=torch.long)
    width = block or max(1, n_new // rng.randint(1, 3))
    spans = [(lo, min(lo + width, n_new)) for lo in range(0, n_new, width)]
    for b in range(batch):
        if kind in ("scatter", "mixed"):
            rate = rng.choice([0.1, 0.3, 0.6])
            for j in range(n_new):
                if rng.random() < rate:
                    fixed[b, j] = rng.choice(TOKENS)
        if kind == "suffix" and rng.random() < 0.7:
            lo = rng.randint(0, n_new - 1)
            fixed[b, lo:] = torch.tensor([rng.choice(TOKENS) for _ in range(n_new - lo)])
        if kind in ("blocks", "mixed") and rng.random() < 0.6:  # pin whole blocks in this row
            for lo, hi in rng.sample(spans, rng.randint(1, len(spans))):
                fixed[b, lo:hi] = torch.tensor([rng.choice(TOKENS) for _ in range(hi - lo)])
        if rng.random() < 0.15:  # an EOS pinned somewhere
            fixed[b, rng.randrange(n_new)] = EOS_ID
    return fixed


def draw_call(rng: random.Random) -> Call:
    """A random sampler call the settings accept."""
    while True:
        model = model_name(*rng.choice(MODEL_KINDS))
        batch = rng.choice([1, 2, 2, 3, 4])
        n_new = rng.randint(1, 14)
        lengths = [rng.randint(1, 6) for _ in range(batch)]
        width = max(lengths)
        side = rng.choice(["left", "right"])
        ids = torch.tensor([[rng.choice(TOKENS) for _ in range(width)] for _ in range(batch)])
        mask = torch.zeros(batch, width, dtype=torch.long)
        for b, n in enumerate(lengths):
            if side == "left":
                mask[b, width - n :] = 1
            else:
                mask[b, :n] = 1
        options = _draw_options(rng, n_new)
        try:
            SamplerSettings(**options)
        except SettingsError:
            continue
        fixed = _draw_fixed(rng, batch, n_new, options.get("block_length"))
        attention_mask = None if all(n == width for n in lengths) else mask
        call = Call(model, ids, attention_mask, lengths, side, fixed, options)
        call.features = _features(call)
        return call


def _features(call: Call) -> set[str]:
    o = call.options
    f = {f"policy={o['policy']}", f"cache={o.get('cache', 'none')}", f"rng={o.get('rng', 'dlm')}"}
    f.add(f"schedule={o.get('schedule', 'linear')}")
    f.add(f"block_start={o.get('block_start', 'any')}")
    f.add("blocks" if "block_length" in o else "no blocks")
    f.add("threshold" if "threshold" in o else "factor" if "factor" in o else "fixed schedule")
    f.add("temperature>0" if o.get("temperature", 0) > 0 else "temperature=0")
    f.add("deterministic" if deterministic(o) else "stochastic")
    f.add("stop_at_eos" if o.get("stop_at_eos", True) else "no stop_at_eos")
    if call.attention_mask is not None:
        f.add(f"ragged ({call.side} padding)")
    if call.fixed is not None:
        f.add("pinned")
        block = o.get("block_length")
        if block:
            n = call.fixed.shape[1]
            whole = [
                bool((call.fixed[:, lo : lo + block] >= 0).all(1).any())
                and not bool((call.fixed[:, lo : lo + block] >= 0).all(1).all())
                for lo in range(0, n, block)
            ]
            if any(whole):
                f.add("block pinned whole in some rows only")
    return f


def _left_padded(call: Call) -> torch.Tensor:
    rows = []
    width = call.input_ids.shape[1]
    for (ids, _), n in zip(call.rows(), call.lengths):
        rows.append(torch.cat([torch.full((width - n,), PAD_ID, dtype=torch.long), ids[0]]))
    return torch.stack(rows)


def check_call(call: Call, models: dict[str, DiffusionLM], found: Counter) -> tuple[int, list[str]]:
    """Run ``call`` and check the properties; returns (properties checked, violations).

    ``found`` counts what the outputs exhibited (rows that ended at an EOS, ...)."""
    model = models[call.model]
    o = call.options
    checked, bad = 0, []

    def check(name: str, ok: bool, detail: str = "") -> None:
        nonlocal checked
        checked += 1
        if not ok:
            bad.append(f"{name}: {detail} | {call.describe()}")

    out = generate(model, call.input_ids, call.attention_mask, fixed=call.fixed, **o)
    region, p0 = out.generated, out.prompt_length
    check("no_mask", not bool((region == MASK_ID).any()), f"region {region.tolist()}")
    check("prompt", torch.equal(out.sequences[:, :p0], _left_padded(call)), "prompt changed")
    pinned = None if call.fixed is None else call.fixed >= 0
    if pinned is not None:
        kept = torch.equal(region[pinned], call.fixed[pinned])
        check("pinned", kept, f"region {region.tolist()}")
    if o.get("stop_at_eos", True):
        is_eos = region == EOS_ID
        after = (is_eos.long().cumsum(1) - is_eos.long()) > 0  # after the row's first EOS
        found["rows ended at an EOS"] += int(is_eos.any(1).sum())
        if pinned is not None:
            found["rows with pinned tokens after their EOS"] += int((after & pinned).any(1).sum())
            after &= ~pinned
        check("eos", bool((region[after] == PAD_ID).all()), f"region {region.tolist()}")

    again = generate(
        model, call.input_ids, call.attention_mask, fixed=call.fixed, output_history=True, **o
    )
    same = torch.equal(again.sequences, out.sequences) and again.nfe == out.nfe
    check("seed", same, f"second run {again.generated.tolist()} nfe {again.nfe} vs {out.nfe}")
    check("history", torch.equal(again.history[-1], again.sequences), "last history entry differs")

    events = list(stream(model, call.input_ids, call.attention_mask, fixed=call.fixed, **o))
    last = events[-1].region if events else again.history[0][:, p0:]
    nfe = events[-1].nfe if events else 0
    same = torch.equal(last, region) and nfe == out.nfe
    check("stream", same, f"stream {last.tolist()} nfe {nfe} vs {out.nfe}")

    if deterministic(o):
        for b, (ids, fixed) in enumerate(call.rows()):
            solo = generate(model, ids, fixed=fixed, **o).generated[0]
            detail = f"row {b}: batch {region[b].tolist()} alone {solo.tolist()}"
            check("alone", torch.equal(solo, region[b]), detail)
    return checked, bad


@dataclass
class Summary:
    calls: int = 0
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    features: Counter = field(default_factory=Counter)
    found: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def run_fuzz(calls: int, seed: int, models: dict[str, DiffusionLM] | None = None) -> Summary:
    """Draw and check ``calls`` calls from ``random.Random(seed)``."""
    models = models or build_models()
    rng = random.Random(seed)
    summary = Summary()
    start = time.perf_counter()
    for _ in range(calls):
        call = draw_call(rng)
        summary.features.update(call.features)
        try:
            checked, bad = check_call(call, models, summary.found)
        except Exception as err:  # a drawn call the settings accept must run
            checked, bad = 1, [f"runs: {type(err).__name__}: {err} | {call.describe()}"]
        summary.calls += 1
        summary.checked += checked
        summary.violations += bad
    summary.seconds = time.perf_counter() - start
    return summary
