"""Elo by maximum likelihood: known ratings come back from simulated games, the intervals
cover the truth about as often as they claim and shrink with more games, a perfect score
stays finite, and the anchor sits exactly where it is put."""

from __future__ import annotations

import math
import random

import pytest

from dlm.chess.ratings import (
    ELO_SCALE,
    GameResult,
    expected_score,
    fit_ratings,
    format_table,
)
from dlm.errors import DlmUserError

TRUE = {"p0": 0.0, "p200": 200.0, "p400": 400.0, "p800": 800.0}


def simulate(true: dict[str, float], games: int, seed: int) -> list[GameResult]:
    """Random pairings and colours; win/draw/loss drawn so White's expected score is Elo's."""
    rng = random.Random(seed)
    names = sorted(true)
    results = []
    for _ in range(games):
        white, black = rng.sample(names, 2)
        p = expected_score(true[white] - true[black])
        draw = min(p, 1.0 - p)  # a draw rate that keeps the expected score at p
        u = rng.random()
        score = 1.0 if u < p - draw / 2 else 0.5 if u < p + draw / 2 else 0.0
        results.append(GameResult(white, black, score))
    return results


def test_recovers_known_ratings():
    results = simulate(TRUE, 6000, seed=0)
    ratings = fit_ratings(results, anchor="p0", anchor_rating=0.0, confidence=0.99)
    assert list(ratings) == ["p800", "p400", "p200", "p0"]  # best first
    for name, true in TRUE.items():
        r = ratings[name]
        assert abs(r.value - true) < 40, (name, r)
        assert r.low <= true <= r.high, (name, r)
    assert sum(r.games for r in ratings.values()) == 2 * len(results)


def test_intervals_cover_the_truth_at_their_level():
    """Over 200 simulated tournaments the 95% intervals cover the true ratings 90-100% of the
    time (the half-win likelihood overstates a draw's noise, so they run a little wide)."""
    covered = total = 0
    for seed in range(200):
        ratings = fit_ratings(simulate(TRUE, 300, seed=1000 + seed), anchor="p0")
        for name in ("p200", "p400", "p800"):
            covered += ratings[name].low <= TRUE[name] <= ratings[name].high
            total += 1
    assert 0.90 <= covered / total <= 1.0


def test_intervals_shrink_with_more_games():
    few = fit_ratings(simulate(TRUE, 400, seed=1), anchor="p0")
    many = fit_ratings(simulate(TRUE, 4000, seed=2), anchor="p0")
    for name in ("p200", "p400", "p800"):
        width_few = few[name].high - few[name].low
        width_many = many[name].high - many[name].low
        assert width_many < width_few / 2.5  # sqrt(10) ~ 3.2 in theory


def test_two_players_match_the_closed_form():
    """75% over 400 games is 400*log10(3) Elo; the interval is z / sqrt(N p q) logits wide."""
    results = [GameResult("a", "b", 1.0)] * 150 + [GameResult("b", "a", 0.0)] * 150
    results += [GameResult("a", "b", 0.0)] * 50 + [GameResult("b", "a", 1.0)] * 50
    ratings = fit_ratings(results, anchor="b", prior_draws=0.0)
    assert ratings["a"].value == pytest.approx(400 * math.log10(3), abs=1e-6)
    half = 1.959963984540054 / math.sqrt(400 * 0.75 * 0.25) * ELO_SCALE
    assert ratings["a"].high - ratings["a"].value == pytest.approx(half, rel=1e-6)
    assert ratings["a"].games == 400 and ratings["a"].score == pytest.approx(0.75)
    assert ratings["a"].points == pytest.approx(300)


def test_perfect_score_stays_finite():
    results = [GameResult("x", "y", 1.0), GameResult("z", "x", 0.0)] * 10
    results += [GameResult("y", "z", 0.5)] * 4
    ratings = fit_ratings(results)
    x = ratings["x"]
    assert math.isfinite(x.value) and math.isfinite(x.low) and math.isfinite(x.high)
    assert x.value > ratings["y"].value and x.value > ratings["z"].value
    assert x.value < 1500 and x.score == 1.0
    with pytest.raises(DlmUserError, match="prior_draws"):
        fit_ratings(results, prior_draws=0.0)


def test_players_who_never_met_get_finite_ratings():
    results = [GameResult("a", "b", 0.5), GameResult("c", "d", 1.0), GameResult("d", "c", 0.5)]
    ratings = fit_ratings(results)
    assert all(math.isfinite(r.value) and math.isfinite(r.high) for r in ratings.values())


def test_anchor_is_exact_and_only_shifts():
    results = simulate(TRUE, 1000, seed=3)
    anchored = fit_ratings(results, anchor="p200", anchor_rating=1500.0)
    r = anchored["p200"]
    assert (r.value, r.low, r.high) == (1500.0, 1500.0, 1500.0)
    free = fit_ratings(results, anchor_rating=1000.0)  # the mean at 1000
    mean = sum(r.value for r in free.values()) / len(free)
    assert mean == pytest.approx(1000.0, abs=1e-9)
    for name in TRUE:
        gap_anchored = anchored[name].value - anchored["p0"].value
        gap_free = free[name].value - free["p0"].value
        assert gap_anchored == pytest.approx(gap_free, abs=1e-6)


def test_format_table_lists_best_first():
    table = format_table(fit_ratings(simulate(TRUE, 500, seed=4), anchor="p0"))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["#", "player", "elo"]
    assert [line.split()[1] for line in lines[1:]] == ["p800", "p400", "p200", "p0"]


@pytest.mark.parametrize(
    ("results", "kwargs", "message"),
    [
        ([], {}, "no game results"),
        ([GameResult("a", "a", 1.0)], {}, "both sides"),
        ([GameResult("a", "b", 2.0)], {}, "1, 0.5 or 0"),
        ([GameResult("a", "b", 1.0)], {"anchor": "c"}, "anchor 'c'"),
        ([GameResult("a", "b", 1.0)], {"confidence": 1.0}, "confidence"),
        ([GameResult("a", "b", 1.0)], {"prior_draws": -1.0}, "prior_draws"),
    ],
)
def test_user_mistakes(results, kwargs, message):
    with pytest.raises(DlmUserError, match=message):
        fit_ratings(results, **kwargs)
