"""Chess test helpers: the Stockfish check, tiny self-play settings, a tiny-agent trainer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dlm.chess.engine import EngineSettings
from dlm.chess.selfplay import GameSettings

HAVE_STOCKFISH = bool(
    os.environ.get("DLM_STOCKFISH")
    or shutil.which("stockfish")
    or os.access("/usr/games/stockfish", os.X_OK)
)
needs_stockfish = pytest.mark.skipif(not HAVE_STOCKFISH, reason="Stockfish is not installed")

#: Tiny, quick settings: 50-node searches, 24-ply games, h = 3.
TINY_GAMES = GameSettings(engine=EngineSettings(nodes=50), horizon=3, max_plies=24)
TINY_AGENT = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2"]


def train_agent(agent: str, data: Path, out: Path, steps: int = 30, extra=()) -> Path:
    """A tiny agent trained ``steps`` steps on ``data``; returns its model folder."""
    from dlm.training import load_train_config, train

    recipe = "recipes/chess/diffusearch.yaml" if agent == "diffusearch" else f"recipes/chess/{agent}.yaml"
    root = Path(__file__).resolve().parents[1]
    config = load_train_config(
        str(root / recipe),
        [
            *TINY_AGENT,
            f"data.task_options.data={data}",
            "data.task_options.horizon=3",
            "data.n_train=32",
            "data.n_eval=4",
            f"optim.max_steps={steps}",
            "optim.batch_size=8",
            "optim.lr=0.003",
            "optim.warmup_steps=0",
            "model.dropout=0.0",
            "log_every=1",
            "save_every=0",
            "progress=false",
            f"output_dir={out}",
            *extra,
        ],
    )
    result, _ = train(config)
    return out / "model", result


