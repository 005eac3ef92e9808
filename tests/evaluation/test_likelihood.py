"""The Monte Carlo ELBO: exact on an input-independent model, unbiased against a brute-force
enumeration of every mask, shrinking error, batch invariance, windows and the perplexity bound."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from torch import nn

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.evaluation.likelihood import (
    elbo,
    elbo_samples,
    masking_levels,
    perplexity_bound,
    sample_masks,
    text_windows,
)
from dlm.models import DiffusionConfig
from helpers import MASK_ID, tiny_model


class FixedDistribution(nn.Module):
    """Logits log q at every position, whatever the input: the ELBO is exactly sum log q(x_i)."""

    def __init__(self, logq: torch.Tensor) -> None:
        super().__init__()
        self.logq = nn.Parameter(logq.log_softmax(-1), requires_grad=False)
        self.config = DiffusionConfig(mask_token_id=MASK_ID, pad_token_id=0, eos_token_id=3)

    def forward(self, input_ids: torch.Tensor, attention_mask=None, **_) -> torch.Tensor:
        return self.logq.expand(*input_ids.shape, -1)


def _skewed(vocab: int = 12) -> FixedDistribution:
    return FixedDistribution(torch.linspace(-3.0, 2.0, vocab))


def test_masking_levels_are_uniform_and_stratified():
    gen = torch.Generator().manual_seed(0)
    levels = masking_levels(4, 12, gen)
    assert sorted(levels.tolist()) == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    offsets = torch.stack([masking_levels(5, 1, gen) for _ in range(2000)]).flatten()
    counts = torch.bincount(offsets, minlength=6)[1:].float()
    assert counts.min() > 300 and counts.max() < 500  # about 400 each
    masks = sample_masks(6, torch.tensor([1, 3, 6]), gen)
    assert masks.sum(1).tolist() == [1, 3, 6]


def test_input_independent_model_every_sample_is_exact():
    """With log q(x_i) the same at every masked position, (L/l) * l * log q(a) = L log q(a)."""
    model = _skewed()
    prefix, cont = [5, 6], [7, 7, 7, 7, 7]
    values = elbo_samples(model, [(prefix, cont)], mc_num=40, batch_size=16)[0]
    target = 5 * float(model.logq[7])
    torch.testing.assert_close(values, torch.full_like(values, target), rtol=0, atol=1e-5)
    (estimate,) = elbo(model, [(prefix, cont)], mc_num=40)
    assert estimate.stderr < 1e-6
    # uniform q: every token has the same log-probability, so distinct tokens are exact too
    uniform = FixedDistribution(torch.zeros(12))
    (est,) = elbo(uniform, [([5], [7, 8, 9, 10])], mc_num=9, stratified=False)
    assert est.elbo == pytest.approx(-4 * math.log(12), abs=1e-5) and est.stderr < 1e-6


@pytest.mark.parametrize("stratified", [True, False])
def test_input_independent_model_is_unbiased(stratified):
    """Distinct tokens: samples vary with the mask, but their mean is sum log q(x_i)."""
    model = _skewed()
    cont = [5, 8, 11, 6]
    (est,) = elbo(model, [([9], cont)], mc_num=4000, batch_size=1000, stratified=stratified)
    exact = float(model.logq[cont].sum())
    assert est.stderr > 0
    assert abs(est.elbo - exact) < 4 * est.stderr


def _brute_force_elbo(model, prefix: list[int], cont: list[int]) -> float:
    """sum_l (1/l) mean_{|M|=l} sum_{i in M} log p(x_i | masked x): every mask enumerated."""
    ids = torch.tensor([prefix + cont])
    start, length = len(prefix), len(cont)
    total = 0.0
    with torch.no_grad():
        for level in range(1, length + 1):
            subsets = list(itertools.combinations(range(length), level))
            inner = 0.0
            for subset in subsets:
                noisy = ids.clone()
                positions = [start + i for i in subset]
                noisy[0, positions] = MASK_ID
                logp = model(noisy).float().log_softmax(-1)[0]
                inner += sum(float(logp[p, ids[0, p]]) for p in positions)
            total += inner / len(subsets) / level
    return total


@pytest.mark.parametrize("shift", [True, False])
def test_matches_brute_force_exact_elbo(shift):
    model = tiny_model(shift=shift, seed=3)
    prefix, cont = [5, 9, 12], [20, 7, 31]
    exact = _brute_force_elbo(model, prefix, cont)
    # 40 copies of the pair: each draws its own masks, i.e. 40 independent seeds in one call
    runs = elbo(model, [(prefix, cont)] * 40, mc_num=24, batch_size=480)
    means = torch.tensor([r.elbo for r in runs], dtype=torch.float64)
    stderr = float(means.std()) / math.sqrt(len(means))
    assert abs(float(means.mean()) - exact) < 4 * stderr + 1e-6
    (big,) = elbo(model, [(prefix, cont)], mc_num=3000, batch_size=1500, seed=99)
    assert abs(big.elbo - exact) < 4 * big.stderr + 1e-6
    assert big.elbo < 0


def test_stderr_shrinks_like_inverse_sqrt_mc_num_and_is_honest():
    model = tiny_model(seed=1)
    pairs = [([5, 6, 7], [8, 21, 9, 30, 11, 12, 25, 14])] * 12
    small = elbo(model, pairs, mc_num=16, batch_size=512)
    large = elbo(model, pairs, mc_num=256, batch_size=512)
    ratio = sum(e.stderr for e in small) / sum(e.stderr for e in large)
    assert 3.0 < ratio < 5.3  # sqrt(256 / 16) = 4
    spread = float(torch.tensor([e.elbo for e in large]).std())
    reported = sum(e.stderr for e in large) / len(large)
    assert 0.4 < spread / reported < 2.0  # the reported error matches the seed-to-seed spread


def test_batching_does_not_change_the_estimate():
    model = tiny_model(seed=2)
    pairs = [([5, 6], [7, 8, 9]), ([5], [10, 11, 12, 13, 14]), ([6, 7, 8, 9], [15]), ([5], [])]
    a = elbo_samples(model, pairs, mc_num=12, batch_size=5, seed=7)
    b = elbo_samples(model, pairs, mc_num=12, batch_size=64, seed=7)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
    assert float(a[3].abs().max()) == 0.0  # an empty continuation has log-likelihood 0
    # the same pair alone draws the same masks: estimates do not depend on the other pairs
    alone = elbo_samples(model, pairs[:1], mc_num=12, seed=7)[0]
    torch.testing.assert_close(alone, a[0], rtol=1e-4, atol=1e-4)


def test_causal_model_gets_its_exact_log_likelihood():
    model = tiny_model(attention="causal", seed=4)
    prefix, cont = [5, 6, 7], [8, 9, 10, 11]
    (est,) = elbo(model, [(prefix, cont), ([5], [12])], mc_num=16)[:1]
    with torch.no_grad():
        logp = model(torch.tensor([prefix + cont])).float().log_softmax(-1)[0]
    exact = sum(float(logp[len(prefix) + i, t]) for i, t in enumerate(cont))
    assert est.exact and est.stderr == 0.0 and est.mc_num == 1
    assert est.elbo == pytest.approx(exact, abs=1e-4)


def test_text_windows_score_every_token_once():
    ids = list(range(100, 123))
    for context in (0, 1, 5):
        windows = text_windows(ids, 8, 3, context)
        assert [t for _, c in windows for t in c] == ids
        assert all(len(p) + len(c) <= 8 and p for p, c in windows)
        assert windows[0][0] == [3]
        if context:
            assert windows[1][0] == ids[len(windows[0][1]) - context : len(windows[0][1])]
    assert text_windows(ids, 8, None, 0)[0] == ([], ids[:8])
    with pytest.raises(ValueError, match="context"):
        text_windows(ids, 8, 3, 8)


def test_perplexity_bound_of_a_uniform_model_is_the_vocabulary_size():
    tokenizer = build_char_tokenizer("abcdefg")
    vocab = len(tokenizer)
    uniform = FixedDistribution(torch.zeros(vocab))
    report = perplexity_bound(uniform, tokenizer, ["abcabcgfed", "", "gg"], seq_len=4, mc_num=6)
    assert report["tokens"] == 12 and report["documents"] == 2 and report["windows"] == 5
    assert report["nll"] == pytest.approx(math.log(vocab))
    assert report["perplexity"] == pytest.approx(vocab)
    assert report["nll_stderr"] < 1e-9


def test_perplexity_bound_of_a_tiny_model():
    tokenizer = build_char_tokenizer("abcdefghij")
    model = tiny_model(seed=5)
    report = perplexity_bound(model, tokenizer, ["abcdefghij" * 2], seq_len=8, mc_num=8)
    assert report["tokens"] == 20 and report["windows"] == 3
    assert report["perplexity"] == pytest.approx(math.exp(report["nll"]))
    assert report["nll"] > 0 and report["nll_stderr"] > 0


def test_bad_arguments_are_refused():
    model = _skewed()
    with pytest.raises(ValueError, match="mc_num"):
        elbo(model, [([5], [6])], mc_num=0)
    with pytest.raises(ValueError, match="batch_size"):
        elbo(model, [([5], [6])], batch_size=0)


def test_eval_ppl_command(tmp_path, capsys):
    from dlm.cli.eval_ppl import run_eval_ppl

    tokenizer = build_char_tokenizer("abcdefghij")
    tiny_model(seed=6).save_pretrained(tmp_path / "model", tokenizer)
    text = tmp_path / "notes.txt"
    text.write_text("abcabcabc\n\njihgfedcba")
    lines = tmp_path / "notes.jsonl"
    lines.write_text('{"text": "abcabcabc"}\n{"text": "jihgfedcba"}\n')
    reports = []
    for data in (text, lines):
        out = tmp_path / f"{data.suffix[1:]}.json"
        assert run_eval_ppl(str(tmp_path / "model"), str(data), 8, 4, 16, str(out)) == 0
        reports.append(json.loads(out.read_text()))
    printed = capsys.readouterr().out
    assert "NLL bound" in printed and "perplexity bound" in printed
    for report in reports:
        assert report["documents"] == 2 and report["tokens"] == 19
        assert report["perplexity"] == pytest.approx(math.exp(report["nll"]))
    assert reports[0]["nll"] == pytest.approx(reports[1]["nll"])  # same text, same masks
