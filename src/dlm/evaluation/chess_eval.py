"""The DiffuSearch comparison: load the agents, then action accuracy, puzzles and Elo.

    dlm chess eval --agents runs/chess/*/model mcts --data data/chess --puzzles puzzles.csv

- ``load_agent(dir)``: the player a trained chess model is for (its recipe's ``agent``);
  ``build_agents`` adds ``mcts`` from an S-A and an S-V model when asked.
- ``action_accuracy``: the share of held-out positions (test games of ``dlm chess make``)
  where the agent's move is Stockfish's, broken down by game phase, with the share of
  positions where the unrestricted prediction was illegal.
- puzzles: ``dlm.chess.puzzles`` (searchless-chess's rule), accuracy per difficulty level.
- Elo: a round robin of the agents over openings, both colours, plus a gauntlet against the
  anchors (a random mover, Stockfish at fixed node counts, Stockfish at ``UCI_Elo`` levels),
  adjudicated (``dlm.chess.tournament``), ratings fitted by maximum likelihood with 95%
  intervals (``dlm.chess.ratings``), the random mover at 0 unless another anchor is named.

``ChessReport`` holds the three tables, prints them and writes ``report.json`` plus the PGN.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess

from dlm.atomic import atomic_write_text
from dlm.chess.agents import (
    ActionValuePlayer,
    DiffuSearchPlayer,
    MCTSPlayer,
    PolicyPlayer,
    StateValuePlayer,
)
from dlm.chess.dataset import game_phase
from dlm.chess.player import Player, RandomPlayer, StockfishPlayer
from dlm.errors import DlmUserError

__all__ = [
    "AccuracyRow",
    "ChessReport",
    "action_accuracy",
    "build_agents",
    "format_accuracy",
    "load_agent",
    "make_anchors",
]

Progress = Callable[[int], object]
_KINDS = {
    "diffusearch": DiffuSearchPlayer,
    "s-a": PolicyPlayer,
    "sa-v": ActionValuePlayer,
    "s-v": StateValuePlayer,
}


def agent_kind(model_dir: str | Path) -> str:
    """The agent a chess model directory was trained as (from its ``train_config.yaml``)."""
    from dlm.training import recorded_recipe

    path = Path(model_dir)
    config = recorded_recipe(path)
    if config is None:
        raise DlmUserError(f"{path} has no train_config.yaml: give a model folder `dlm train` wrote")
    if config.data.task != "chess":
        raise DlmUserError(f"{path} was trained on task {config.data.task!r}, not on chess")
    return str(config.data.task_options.get("agent", "diffusearch"))


def load_agent(model_dir: str | Path, name: str | None = None, **options: Any) -> Player:
    """The player of a trained chess model directory (``options`` go to its constructor)."""
    from dlm.checkpoints import load_model

    kind = agent_kind(model_dir)
    model = load_model(model_dir)
    return _KINDS[kind](model, name=name or kind, **options)


def build_agents(
    specs: Sequence[str],
    *,
    simulations: int = 100,
    c_puct: float = 0.1,
    steps: int = 20,
    reference_decoder: bool = False,
) -> list[Player]:
    """Players from model directories, plus ``mcts`` (built from the S-A and S-V given);
    ``steps`` and ``reference_decoder`` are DiffuSearch's (``DiffuSearchPlayer``)."""
    players: list[Player] = []
    for spec in specs:
        if spec == "mcts":
            continue
        kind = agent_kind(spec)
        options = (
            {"steps": steps, "reference": reference_decoder} if kind == "diffusearch" else {}
        )
        name = kind if kind not in {p.name for p in players} else f"{kind}:{Path(spec).parent.name}"
        players.append(load_agent(spec, name=name, **options))
    if "mcts" in specs:
        policy = next((p for p in players if isinstance(p, PolicyPlayer)), None)
        value = next((p for p in players if isinstance(p, StateValuePlayer)), None)
        if policy is None or value is None:
            raise DlmUserError("mcts needs an S-A and an S-V model among --agents")
        players.append(MCTSPlayer(policy, value, simulations=simulations, c_puct=c_puct))
    if not players:
        raise DlmUserError("--agents names no model folder")
    return players


@dataclass
class AccuracyRow:
    agent: str
    positions: int
    correct: int
    illegal: int
    by_phase: dict[str, tuple[int, int]] = field(default_factory=dict)  # phase -> (correct, n)

    @property
    def accuracy(self) -> float:
        return self.correct / self.positions if self.positions else 0.0

    @property
    def illegal_rate(self) -> float:
        return self.illegal / self.positions if self.positions else 0.0


def action_accuracy(
    players: Sequence[Player], records: Sequence[dict[str, Any]], progress: Progress | None = None
) -> list[AccuracyRow]:
    """Each player's move against Stockfish's on held-out positions."""
    rows = []
    for player in players:
        row = AccuracyRow(player.name, 0, 0, 0)
        phases: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for record in records:
            board = chess.Board(record["fen"])
            decision = player.choose(board)
            hit = decision.move.uci() == record["best"]
            row.positions += 1
            row.correct += hit
            row.illegal += decision.illegal_prediction
            phase = phases[game_phase(board)]
            phase[0] += hit
            phase[1] += 1
            if progress is not None:
                progress(1)
        row.by_phase = {k: (v[0], v[1]) for k, v in sorted(phases.items())}
        rows.append(row)
    return rows


def format_accuracy(rows: Sequence[AccuracyRow]) -> str:
    phases = sorted({p for r in rows for p in r.by_phase})
    width = max(len("agent"), *(len(r.agent) for r in rows))
    head = f"{'agent':<{width}}  {'accuracy':>8}  {'illegal':>7}  " + "  ".join(
        f"{p:>10}" for p in phases
    )
    lines = [head]
    for r in rows:
        cells = []
        for p in phases:
            c, n = r.by_phase.get(p, (0, 0))
            cells.append(f"{100 * c / n:9.1f}%" if n else f"{'-':>10}")
        lines.append(
            f"{r.agent:<{width}}  {100 * r.accuracy:7.1f}%  {100 * r.illegal_rate:6.1f}%  "
            + "  ".join(cells)
        )
    lines.append(f"({rows[0].positions if rows else 0} held-out positions; Stockfish's move)")
    return "\n".join(lines)


def make_anchors(specs: Sequence[str], seed: int = 0) -> list[Player]:
    """Anchors from names: ``random``, ``sf-nN`` (Stockfish at N nodes), ``sf-eloE``
    (Stockfish's UCI_Elo level E, 1350 and up in Stockfish 15)."""
    anchors: list[Player] = []
    for spec in specs:
        if spec == "random":
            anchors.append(RandomPlayer(seed=seed))
        elif spec.startswith("sf-n") and spec[4:].isdigit():
            anchors.append(StockfishPlayer(nodes=int(spec[4:]), name=spec))
        elif spec.startswith("sf-elo") and spec[6:].isdigit():
            anchors.append(StockfishPlayer(nodes=100_000, elo=int(spec[6:]), name=spec))
        else:
            raise DlmUserError(
                f"anchor {spec!r} is not random, sf-nN (e.g. sf-n1) or sf-eloE (e.g. sf-elo1350)"
            )
    return anchors


@dataclass
class ChessReport:
    accuracy: list[AccuracyRow] | None = None
    puzzles: Any = None  # dlm.chess.puzzles.PuzzleResults
    ratings: dict[str, Any] | None = None  # name -> dlm.chess.ratings.Rating
    games: int = 0
    illegal_in_games: dict[str, float] = field(default_factory=dict)

    def text(self) -> str:
        from dlm.chess import puzzles, ratings

        parts = []
        if self.accuracy:
            parts += ["Action accuracy", format_accuracy(self.accuracy)]
        if self.puzzles is not None:
            parts += ["Puzzles (% solved)", puzzles.format_table(self.puzzles)]
        if self.ratings:
            parts += [f"Elo ({self.games} games, 95% intervals)", ratings.format_table(self.ratings)]
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.accuracy:
            out["action_accuracy"] = {
                r.agent: {
                    "accuracy": r.accuracy,
                    "illegal_rate": r.illegal_rate,
                    "positions": r.positions,
                    "by_phase": {k: {"correct": c, "n": n} for k, (c, n) in r.by_phase.items()},
                }
                for r in self.accuracy
            }
        if self.puzzles is not None:
            out["puzzles"] = self.puzzles.table()
        if self.ratings:
            out["elo"] = {
                k: {"elo": r.value, "low": r.low, "high": r.high, "games": r.games, "score": r.score}
                for k, r in self.ratings.items()
            }
            out["games"] = self.games
            out["illegal_in_games"] = self.illegal_in_games
        return out

    def write(self, out_dir: Path) -> None:
        atomic_write_text(out_dir / "report.json", json.dumps(self.to_json(), indent=2) + "\n")
        atomic_write_text(out_dir / "report.txt", self.text() + "\n")
