"""What plays a move: the ``Player`` protocol every agent, anchor and human seat implements.

``choose(board)`` returns a ``Decision``: the move (always legal), the future the player
predicts after it (DiffuSearch shows its imagined line; others predict nothing), and whether
the player's unrestricted first choice was illegal (so a report can count how often a model
would have played an illegal move had it not been restricted). Tournaments, puzzles, the
terminal game and a web page all call players through this one method.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import chess

from .engine import EngineSettings, open_engine

__all__ = ["Decision", "Player", "RandomPlayer", "StockfishPlayer"]


@dataclass(frozen=True)
class Decision:
    move: chess.Move
    line: tuple[chess.Move, ...] = ()  # the predicted moves after ``move`` (both sides)
    boards: tuple[str, ...] = ()  # the predicted boards (FEN) after each move, when the player has them
    illegal_prediction: bool = False  # the unrestricted first choice was not a legal move
    scores: dict[str, float] = field(default_factory=dict)  # e.g. visit counts, values


@runtime_checkable
class Player(Protocol):
    name: str

    def choose(self, board: chess.Board) -> Decision: ...


class RandomPlayer:
    """A uniformly random legal move (the bottom anchor of a rating list)."""

    def __init__(self, seed: int = 0, name: str = "random") -> None:
        self.name = name
        self._rng = random.Random(seed)

    def choose(self, board: chess.Board) -> Decision:
        moves = sorted(board.legal_moves, key=chess.Move.uci)
        return Decision(self._rng.choice(moves))


class StockfishPlayer:
    """Stockfish at a fixed node count, or at a ``UCI_Elo`` level (``UCI_LimitStrength``).

    A context manager (it owns an engine process); ``close()`` ends it. With ``elo`` the
    engine's own strength limiter chooses (it randomises internally, so such games do not
    replay exactly); with ``nodes`` alone every move is a deterministic search from an empty hash.
    """

    def __init__(self, nodes: int = 1, elo: int | None = None, name: str | None = None) -> None:
        options: dict[str, object] = {}
        if elo is not None:
            options = {"UCI_LimitStrength": True, "UCI_Elo": elo}
        self.name = name or (f"stockfish-elo{elo}" if elo is not None else f"stockfish-n{nodes}")
        self.nodes = nodes
        self._context = open_engine(EngineSettings(nodes=nodes), **options)
        self._engine = self._context.__enter__()

    def choose(self, board: chess.Board) -> Decision:
        result = self._engine.play(board, chess.engine.Limit(nodes=self.nodes), game=object())
        assert result.move is not None
        return Decision(result.move)

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def __enter__(self) -> StockfishPlayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
