"""Stockfish through python-chess, set up so the same search gives the same answer.

Every search here runs with ``Threads=1``, a fixed hash size and a fixed node limit, and starts
from an empty hash (python-chess sends ``ucinewgame`` when the ``game`` key changes, and
Stockfish clears its hash on it), so a label depends on the position alone: not on what the
engine searched before, on the process it ran in, or on the order of the work.

The engine is found at ``$DLM_STOCKFISH``, else ``stockfish`` on the PATH, else Debian's
``/usr/games/stockfish`` (``apt-get install stockfish``).

Values follow searchless-chess (Ruoss et al. 2024), which DiffuSearch's data comes from: a
centipawn score becomes a win probability ``0.5 + 0.5 * (2 / (1 + exp(-0.00368208 cp)) - 1)``
(a mate: 1 or 0), cut into ``VALUE_BINS`` = 128 equal bins; a bin's value is its centre.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import chess
import chess.engine

from dlm.errors import DlmUserError

__all__ = [
    "VALUE_BINS",
    "EngineSettings",
    "Search",
    "bin_value",
    "every_move_value",
    "open_engine",
    "search",
    "stockfish_path",
    "value_bin",
    "win_probability",
]

VALUE_BINS = 128
_DEBIAN_PATH = "/usr/games/stockfish"


def stockfish_path() -> str:
    """The Stockfish binary: ``$DLM_STOCKFISH``, ``stockfish`` on the PATH, or Debian's."""
    env = os.environ.get("DLM_STOCKFISH")
    if env:
        if not (os.path.isfile(env) and os.access(env, os.X_OK)):
            raise DlmUserError(f"DLM_STOCKFISH={env!r} is not an executable file; fix or unset it")
        return env
    found = shutil.which("stockfish") or (
        _DEBIAN_PATH if os.access(_DEBIAN_PATH, os.X_OK) else None
    )
    if found is None:
        raise DlmUserError(
            "Stockfish is not installed: `apt-get install stockfish` (Debian/Ubuntu), or set "
            "DLM_STOCKFISH to the path of a Stockfish binary"
        )
    return found


@dataclass(frozen=True)
class EngineSettings:
    """How every search of a run is limited: the same settings give the same labels."""

    nodes: int = 1000  # per search (the reference used 0.05 s, ~10-50x more on a fast core)
    hash_mb: int = 16
    threads: int = 1

    def __post_init__(self) -> None:
        for name, low in (("nodes", 1), ("hash_mb", 1), ("threads", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DlmUserError(f"engine {name} must be a whole number >= {low}; got {value!r}")


@contextmanager
def open_engine(
    settings: EngineSettings | None = None, **options: object
) -> Iterator[chess.engine.SimpleEngine]:
    """A Stockfish process configured by ``settings`` (plus raw UCI ``options``), closed on exit."""
    settings = settings or EngineSettings()
    engine = chess.engine.SimpleEngine.popen_uci(stockfish_path())
    try:
        engine.configure({"Threads": settings.threads, "Hash": settings.hash_mb, **options})
        yield engine
    finally:
        engine.quit()


def win_probability(score: chess.engine.PovScore, color: chess.Color) -> float:
    """The win probability of ``color`` for an engine score (searchless-chess's formula)."""
    pov = score.pov(color)
    mate = pov.mate()
    if mate is not None:
        return 1.0 if mate > 0 else 0.0
    cp = pov.score()
    assert cp is not None
    return 0.5 + 0.5 * (2.0 / (1.0 + math.exp(-0.00368208 * cp)) - 1.0)


def value_bin(probability: float, bins: int = VALUE_BINS) -> int:
    """The bin (0 .. bins-1) a win probability falls in."""
    return min(int(probability * bins), bins - 1)


def bin_value(index: int, bins: int = VALUE_BINS) -> float:
    """A bin's value: its centre, ``(index + 0.5) / bins``."""
    return (index + 0.5) / bins


@dataclass(frozen=True)
class Search:
    """One search's answer, from the side to move's point of view."""

    best: chess.Move | None  # None when the position is over
    pv: tuple[chess.Move, ...]
    win_prob: float
    values: dict[chess.Move, float] | None = None  # every legal move's win probability (multipv)


def search(
    engine: chess.engine.SimpleEngine,
    board: chess.Board,
    nodes: int,
    *,
    all_moves: bool = False,
) -> Search:
    """Search ``board`` from an empty hash with a node limit; ``all_moves``: score every legal
    move too (MultiPV over all of them, the node budget shared between them: at a small
    budget it does not reach every move; ``every_move_value`` completes them)."""
    legal = board.legal_moves.count()
    limit = chess.engine.Limit(nodes=nodes)
    if legal == 0:
        outcome = board.outcome(claim_draw=False)
        p = 0.5 if outcome is None or outcome.winner is None else float(outcome.winner == board.turn)
        return Search(None, (), p, {} if all_moves else None)
    infos = engine.analyse(
        board, limit, multipv=legal if all_moves else 1, game=object()
    )
    top = infos[0]
    pv = tuple(top.get("pv", ()))
    best = pv[0] if pv else next(iter(board.legal_moves))
    values = None
    if all_moves:
        values = {
            info["pv"][0]: win_probability(info["score"], board.turn)
            for info in infos
            if info.get("pv")
        }
    return Search(best, pv, win_probability(top["score"], board.turn), values)


def every_move_value(
    engine: chess.engine.SimpleEngine, board: chess.Board, found: Search, nodes: int
) -> dict[chess.Move, float]:
    """Every legal move's win probability: those ``found`` by an ``all_moves`` search, and
    each move it did not reach valued by a search of the position it leads to."""
    values = dict(found.values or {})
    for move in sorted(set(board.legal_moves) - set(values), key=chess.Move.uci):
        child = board.copy()
        child.push(move)
        values[move] = 1.0 - search(engine, child, nodes).win_prob
    return values
