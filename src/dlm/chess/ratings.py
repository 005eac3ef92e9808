"""Elo ratings fitted by maximum likelihood from game results, with confidence intervals.

The model is Elo's logistic (Bradley-Terry) curve on the usual scale: a player rated ``d``
points above the opponent is expected to score ``1 / (1 + 10 ** (-d / 400))``. Deliberate
choices, each a departure from or a simplification of BayesElo (which the DiffuSearch and
searchless-chess tournaments used):

* **Draws are half a win for each side.** A game with score ``s`` (1, 0.5 or 0 for White)
  adds ``s * log p + (1 - s) * log(1 - p)`` to the log-likelihood, ``p`` White's expected
  score. There is no separate draw parameter (BayesElo's ``drawelo``): the fitted difference
  then means what Elo's definition says, the expected score, whatever the draw rate. BayesElo's
  draw model stretches the scale when many games are drawn, so its numbers are not directly
  comparable with ours.
* **No first-move advantage term.** The tournaments here play every pairing with both colours,
  so White's edge cancels out of the ratings.
* **A weak prior keeps every rating finite.** Each player gets ``prior_draws`` (default 1)
  virtual draws against a phantom player rated at the pool's mean. Without it a player who
  won (or lost) every game has no finite maximum-likelihood rating, and two groups that never
  met have no defined gap. One virtual draw moves a player with hundreds of games by a few Elo
  at most. ``prior_draws=0`` gives the plain MLE and is refused when it does not exist (the
  "scored against" graph is not strongly connected, Zermelo's condition).
* **The fit** maximises the log-posterior with ``scipy.optimize.minimize`` (``trust-exact``,
  analytic gradient and Hessian; the problem is concave) over ratings constrained to sum to
  zero, then shifts them so the ``anchor`` player, or else the pool mean, sits at
  ``anchor_rating``.
* **Confidence intervals** are Wald intervals from the inverse of the observed information
  (the negative Hessian of the log-posterior at the optimum), for each player's difference
  from the anchor (or from the pool mean when nothing is anchored). The anchor's own interval
  is therefore its exact rating. The half-win likelihood treats a draw as binomial noise,
  which overstates the variance of a drawn game, so with draws the intervals are slightly
  conservative (wider than needed), never too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize, stats
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from dlm.errors import DlmUserError

__all__ = ["ELO_SCALE", "GameResult", "Rating", "expected_score", "fit_ratings", "format_table"]

ELO_SCALE = 400.0 / math.log(10.0)  # Elo points per natural-log unit of the odds


@dataclass(frozen=True)
class GameResult:
    """One finished game: the players' names and White's score (1 win, 0.5 draw, 0 loss)."""

    white: str
    black: str
    score: float


@dataclass(frozen=True)
class Rating:
    """A fitted rating with its confidence interval, and the games it rests on."""

    value: float
    low: float
    high: float
    games: int
    score: float  # mean score per game, 0..1 (a draw is 0.5)

    @property
    def points(self) -> float:
        return self.score * self.games


def expected_score(difference: float) -> float:
    """The expected score of a player rated ``difference`` Elo above the opponent."""
    return 1.0 / (1.0 + 10.0 ** (-difference / 400.0))


def _check_results(results: list[GameResult]) -> None:
    if not results:
        raise DlmUserError("no game results to rate; play some games first")
    for result in results:
        if result.white == result.black:
            raise DlmUserError(
                f"a game has {result.white!r} on both sides; rate only games between two players"
            )
        if result.score not in (0.0, 0.5, 1.0):
            raise DlmUserError(
                f"a game {result.white!r} vs {result.black!r} has score {result.score!r}; "
                "give White's score as 1, 0.5 or 0"
            )


def _strongly_connected(n: int, white: np.ndarray, black: np.ndarray, s: np.ndarray) -> bool:
    """Whether every player scored, directly or through others, against every other player."""
    rows = np.concatenate([white[s > 0], black[s < 1]])  # scorer
    cols = np.concatenate([black[s > 0], white[s < 1]])  # scored against
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    count, _ = connected_components(graph, directed=True, connection="strong")
    return count == 1


def fit_ratings(
    results: Iterable[GameResult],
    anchor: str | None = None,
    anchor_rating: float = 0.0,
    *,
    confidence: float = 0.95,
    prior_draws: float = 1.0,
) -> dict[str, Rating]:
    """Elo ratings of every player in ``results``, ``anchor`` (or the mean) at ``anchor_rating``.

    ``confidence`` is the two-sided level of the intervals; ``prior_draws`` the number of
    virtual draws each player gets against the pool mean (see the module docstring). The
    returned dict is ordered from the highest rating to the lowest.
    """
    results = list(results)
    _check_results(results)
    if not 0.0 < confidence < 1.0:
        raise DlmUserError(f"confidence must lie strictly between 0 and 1; got {confidence!r}")
    if not (math.isfinite(prior_draws) and prior_draws >= 0.0):
        raise DlmUserError(f"prior_draws must be a number >= 0; got {prior_draws!r}")
    names = sorted({r.white for r in results} | {r.black for r in results})
    if anchor is not None and anchor not in names:
        raise DlmUserError(f"anchor {anchor!r} played no game; anchor one of: {', '.join(names)}")
    index = {name: i for i, name in enumerate(names)}
    n = len(names)
    white = np.array([index[r.white] for r in results])
    black = np.array([index[r.black] for r in results])
    s = np.array([r.score for r in results], dtype=float)
    if prior_draws == 0.0 and not _strongly_connected(n, white, black, s):
        raise DlmUserError(
            "with prior_draws=0 these results have no finite ratings (a player won or lost "
            "every game, or some players never met); use prior_draws > 0"
        )

    # Games grouped by ordered pairing: how many, and White's total score.
    pairs, inverse = np.unique(np.stack([white, black], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    count = np.bincount(inverse, minlength=len(pairs)).astype(float)
    total = np.bincount(inverse, weights=s, minlength=len(pairs))
    # Ratings in natural-log units, theta = basis @ phi: the basis spans the sum-zero
    # subspace, so the pool mean is 0 and the prior's phantom opponent sits at 0.
    basis = linalg.null_space(np.ones((1, n)))  # n x (n-1), orthonormal columns
    # Each pairing's +1/-1 incidence row: White-minus-Black differences are incidence @ theta.
    incidence = np.zeros((len(pairs), n))
    incidence[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    incidence[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    ab = incidence @ basis

    def negative_log_posterior(phi: np.ndarray) -> float:
        d = ab @ phi
        theta = basis @ phi
        # log(sigmoid(x)) = -logaddexp(0, -x), stable for large |x|
        ll = -(total * np.logaddexp(0.0, -d) + (count - total) * np.logaddexp(0.0, d)).sum()
        prior = -0.5 * prior_draws * (np.logaddexp(0.0, -theta) + np.logaddexp(0.0, theta)).sum()
        return float(-(ll + prior))

    def gradient(phi: np.ndarray) -> np.ndarray:
        d = ab @ phi
        theta = basis @ phi
        g = ab.T @ (total - count * _sigmoid(d)) + basis.T @ (prior_draws * (0.5 - _sigmoid(theta)))
        return -g

    def hessian(phi: np.ndarray) -> np.ndarray:
        d = ab @ phi
        theta = basis @ phi
        wd = count * _sigmoid(d) * _sigmoid(-d)
        wt = prior_draws * _sigmoid(theta) * _sigmoid(-theta)
        return ab.T @ (wd[:, None] * ab) + basis.T @ (wt[:, None] * basis)

    fit = optimize.minimize(
        negative_log_posterior,
        np.zeros(n - 1),
        jac=gradient,
        hess=hessian,
        method="trust-exact",
        options={"gtol": 1e-10},
    )
    phi = fit.x
    # Converged when the Newton step still to go is negligible on the Elo scale (trust-exact
    # may stop with "bad approximation" once the objective no longer changes in floating point).
    remaining = basis @ np.linalg.solve(hessian(phi), gradient(phi)) * ELO_SCALE
    if not fit.success and np.abs(remaining).max() > 1e-3:
        raise RuntimeError(f"the rating fit did not converge: {fit.message}")
    theta = basis @ phi
    covariance = basis @ np.linalg.inv(hessian(phi)) @ basis.T

    if anchor is None:
        shift = np.full(n, theta.mean())  # zero: the basis keeps theta sum-zero
        variance = np.diag(covariance)
    else:
        k = index[anchor]
        shift = np.full(n, theta[k])
        variance = np.diag(covariance) + covariance[k, k] - 2.0 * covariance[:, k]
    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    values = (theta - shift) * ELO_SCALE + anchor_rating
    half = z * np.sqrt(np.clip(variance, 0.0, None)) * ELO_SCALE

    games = np.bincount(white, minlength=n) + np.bincount(black, minlength=n)
    points = np.bincount(white, weights=s, minlength=n) + np.bincount(
        black, weights=1.0 - s, minlength=n
    )
    ratings = {
        name: Rating(
            value=float(values[i]),
            low=float(values[i] - half[i]),
            high=float(values[i] + half[i]),
            games=int(games[i]),
            score=float(points[i] / games[i]),
        )
        for i, name in enumerate(names)
    }
    if anchor is not None:  # exact, not a rounding error away from it
        r = ratings[anchor]
        ratings[anchor] = Rating(anchor_rating, anchor_rating, anchor_rating, r.games, r.score)
    return dict(sorted(ratings.items(), key=lambda item: (-item[1].value, item[0])))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def format_table(ratings: Mapping[str, Rating]) -> str:
    """A plain-text table, best first: rank, name, Elo, the interval, games and score."""
    rows = sorted(ratings.items(), key=lambda item: (-item[1].value, item[0]))
    width = max([len("player"), *(len(name) for name, _ in rows)])
    lines = [f"{'#':>3}  {'player':<{width}}  {'elo':>6}  {'interval':>15}  {'games':>5}  score"]
    for rank, (name, r) in enumerate(rows, start=1):
        interval = f"[{r.low:.0f}, {r.high:.0f}]"
        lines.append(
            f"{rank:>3}  {name:<{width}}  {r.value:>6.0f}  {interval:>15}  {r.games:>5}"
            f"  {100.0 * r.score:4.1f}%"
        )
    return "\n".join(lines)
