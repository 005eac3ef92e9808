"""One self-play game and the labels of its positions: the unit ``dlm chess make`` repeats.

A game is a pure function of (seed, game id, engine settings, horizon): it starts from one of
the shipped openings, adds 0-4 random legal plies, then plays on at a *mixed strength* drawn
for the game, so the positions are diverse (not only what the best play reaches):

- with probability ``random_share`` (0, 0.1, 0.25 or 0.5 for the game) a uniformly random
  legal move;
- otherwise a move drawn from the softmax of the win probabilities of the moves one MultiPV
  search reaches, at a temperature (0, 0.02, 0.05 or 0.1 for the game; 0 plays Stockfish's
  best move).

Every position before the game ends is a record, labelled by Stockfish at the run's fixed
node limit from an empty hash (``engine.search``):

- ``best``: Stockfish's move;
- ``line``: the future, h moves (``horizon``, 4 by default) made by **Stockfish playing both
  sides** from the position (the reference's choice; each move is a fresh search of the
  position it is played in, so the line ends early only when the game does);
- ``value``: the side to move's win probability (for S-V), and ``action_values``: every legal
  move's win probability from one MultiPV search over all of them (for SA-V; that search
  shares the node budget between the moves, so its values are coarser than ``value``; a move
  it does not reach is valued by a search of the position after it). The game is the same
  with or without ``action_values``.

The searches of one game are cached by position, so a line that follows the game costs
nothing extra. A game ends at checkmate, stalemate, a claimable draw, insufficient material,
or ``max_plies``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import chess
import chess.engine

from .engine import EngineSettings, Search, every_move_value, search
from .openings import Opening

__all__ = ["GameSettings", "play_and_label"]

RANDOM_SHARES = (0.0, 0.1, 0.25, 0.5)
TEMPERATURES = (0.0, 0.02, 0.05, 0.1)


@dataclass(frozen=True)
class GameSettings:
    engine: EngineSettings = EngineSettings()
    horizon: int = 4  # moves in a record's future line, the move itself included
    max_plies: int = 200
    action_values: bool = True  # label every legal move (SA-V data); off halves the searches
    seed: int = 0


class _Labeller:
    """Cached searches of one game's positions (keyed by FEN; a game is deterministic, so a
    cached answer is the one a fresh search of the same board would give)."""

    def __init__(self, engine: chess.engine.SimpleEngine, settings: GameSettings) -> None:
        self.engine, self.settings = engine, settings
        self.best: dict[str, Search] = {}
        self.all: dict[str, Search] = {}
        self.searches = 0

    def top(self, board: chess.Board) -> Search:
        key = board.fen()
        if key not in self.best:
            self.best[key] = search(self.engine, board, self.settings.engine.nodes)
            self.searches += 1
        return self.best[key]

    def every_move(self, board: chess.Board) -> Search:
        key = board.fen()
        if key not in self.all:
            self.all[key] = search(self.engine, board, self.settings.engine.nodes, all_moves=True)
            self.searches += 1
        return self.all[key]

    def line(self, board: chess.Board) -> list[str]:
        board = board.copy()
        moves: list[str] = []
        while len(moves) < self.settings.horizon and not _over(board):
            move = self.top(board).best
            assert move is not None
            moves.append(move.uci())
            board.push(move)
        return moves


def _over(board: chess.Board) -> bool:
    return board.is_game_over(claim_draw=True)


def _game_move(
    board: chess.Board, labels: _Labeller, rng: random.Random, share: float, temperature: float
) -> chess.Move:
    legal = sorted(board.legal_moves, key=chess.Move.uci)
    if rng.random() < share:
        return rng.choice(legal)
    if temperature <= 0:
        best = labels.top(board).best
        assert best is not None
        return best
    values = labels.every_move(board).values or {}
    scores = [values.get(m, 0.0) / temperature for m in legal]
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    return rng.choices(legal, weights)[0]


def play_and_label(
    engine: chess.engine.SimpleEngine,
    game_id: int,
    openings: list[Opening],
    settings: GameSettings,
) -> tuple[list[dict[str, Any]], int]:
    """The records of game ``game_id`` and the number of engine searches they took."""
    rng = random.Random(f"dlm-chess:{settings.seed}:{game_id}")
    opening = openings[rng.randrange(len(openings))]
    board = opening.board()
    for _ in range(rng.randint(0, 4)):
        if _over(board):
            break
        board.push(rng.choice(sorted(board.legal_moves, key=chess.Move.uci)))
    share, temperature = rng.choice(RANDOM_SHARES), rng.choice(TEMPERATURES)
    labels = _Labeller(engine, settings)
    positions: list[chess.Board] = []
    while not _over(board) and board.ply() < settings.max_plies:
        positions.append(board.copy())
        board.push(_game_move(board, labels, rng, share, temperature))
    records = []
    for ply, position in enumerate(positions):
        top = labels.top(position)
        assert top.best is not None
        record: dict[str, Any] = {
            "game": game_id,
            "ply": ply,
            "fen": position.fen(),
            "best": top.best.uci(),
            "line": labels.line(position),
            "value": round(top.win_prob, 6),
            "played": positions[ply + 1].peek().uci() if ply + 1 < len(positions) else board.peek().uci(),
        }
        if settings.action_values:
            values = every_move_value(
                labels.engine, position, labels.every_move(position), settings.engine.nodes
            )
            labels.searches += len(values) - len(labels.every_move(position).values or {})
            record["action_values"] = {m.uci(): round(v, 6) for m, v in sorted(values.items(), key=lambda kv: kv[0].uci())}
        records.append(record)
    return records, labels.searches
