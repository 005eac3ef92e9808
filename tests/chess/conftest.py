"""Shared chess fixtures: a small Stockfish-labelled data set and tiny trained agents.

Both are session-scoped (made once, a few seconds each) and need Debian's Stockfish, which
`.ci/run` installs; without it the tests that use them are skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chess_helpers import HAVE_STOCKFISH, TINY_GAMES, train_agent
from dlm.chess.dataset import make_dataset


@pytest.fixture(scope="session")
def chess_data(tmp_path_factory) -> Path:
    if not HAVE_STOCKFISH:
        pytest.skip("Stockfish is not installed")
    out = tmp_path_factory.mktemp("chess") / "data"
    make_dataset(out, 5, settings=TINY_GAMES, test_every=3)
    return out


@pytest.fixture(scope="session")
def tiny_agents(chess_data, tmp_path_factory) -> dict[str, Path]:
    """One tiny model folder per agent (diffusearch, s-a, s-v, sa-v), 30 steps each."""
    root = tmp_path_factory.mktemp("agents")
    return {a: train_agent(a, chess_data, root / a)[0] for a in ("diffusearch", "s-a", "s-v", "sa-v")}
