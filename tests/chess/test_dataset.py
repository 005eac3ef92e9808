"""``dlm chess make``: reproducible labels, resumable shards, the split by game."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time

import chess
import pytest

from chess_helpers import TINY_GAMES, needs_stockfish
from dlm.chess.dataset import game_split, load_records, make_dataset
from dlm.chess.engine import open_engine
from dlm.chess.openings import load_openings
from dlm.chess.selfplay import play_and_label
from dlm.errors import DlmUserError

pytestmark = needs_stockfish
#: Without action values (one MultiPV search and its fill-ins less per position): quicker.
QUICK = dataclasses.replace(TINY_GAMES, action_values=False)


def _shard_bytes(root):
    return {p.name: p.read_bytes() for p in sorted((root / "shards").glob("*.jsonl"))}


def test_the_shipped_openings_are_legal_and_varied():
    openings = load_openings()
    assert len(openings) >= 60
    assert len({o.moves for o in openings}) == len(openings)
    assert len({o.board().fen() for o in openings}) == len(openings)


def test_labels_are_identical_on_a_rerun_and_well_formed():
    openings = load_openings()
    with open_engine(TINY_GAMES.engine) as engine:
        first, _ = play_and_label(engine, 3, openings, TINY_GAMES)
    with open_engine(TINY_GAMES.engine) as engine:  # a fresh process, other work before
        play_and_label(engine, 5, openings, QUICK)
        second, _ = play_and_label(engine, 3, openings, TINY_GAMES)
    assert first == second and first
    for r in first:
        board = chess.Board(r["fen"])
        assert r["line"][0] == r["best"]
        for uci in r["line"]:  # the future is a legal line of moves
            move = chess.Move.from_uci(uci)
            assert move in board.legal_moves
            board.push(move)
        assert 1 <= len(r["line"]) <= TINY_GAMES.horizon
        assert 0.0 <= r["value"] <= 1.0
        legal = {m.uci() for m in chess.Board(r["fen"]).legal_moves}
        assert set(r["action_values"]) == legal


def test_a_killed_make_resumes_without_loss_or_duplication(tmp_path):
    games = 12  # three shards of four games
    whole = tmp_path / "whole"
    make_dataset(whole, games, settings=QUICK, shard_games=4)
    killed = tmp_path / "killed"
    command = [
        sys.executable, "-m", "dlm.cli.main", "chess", "make", "--games", str(games),
        "--nodes", "50", "--horizon", "3", "--max-plies", "24", "--no-action-values",
        "--shard-games", "4", "--out", str(killed), "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(command)
    deadline = time.time() + 120
    while time.time() < deadline and not list((killed / "shards").glob("*.jsonl")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _shard_bytes(killed)
    assert 1 <= len(done) < 3, "the kill should land after the first shard"
    report = make_dataset(killed, games, settings=QUICK, shard_games=4)
    assert report.skipped_shards == len(done)
    assert _shard_bytes(killed) == _shard_bytes(whole)
    records = load_records(killed)
    keys = [(r["game"], r["ply"]) for r in records]
    assert len(keys) == len(set(keys))
    assert {g for g, _ in keys} == set(range(games))


def test_workers_give_the_same_files_as_one_process(tmp_path):
    make_dataset(tmp_path / "one", 8, settings=QUICK, shard_games=2)
    make_dataset(tmp_path / "two", 8, workers=2, settings=QUICK, shard_games=2)
    assert _shard_bytes(tmp_path / "one") == _shard_bytes(tmp_path / "two")


def test_the_split_is_by_game(chess_data):
    train, test = load_records(chess_data, "train"), load_records(chess_data, "test")
    assert {r["game"] for r in train}.isdisjoint({r["game"] for r in test})
    assert {r["game"] for r in test} == {2}
    assert all(game_split(r["game"], 3) == "test" for r in test)


def test_other_settings_in_the_same_folder_are_refused(chess_data, tmp_path):
    settings = json.loads((chess_data / "settings.json").read_text())
    assert settings["engine"]["nodes"] == 50
    with pytest.raises(DlmUserError, match="other settings"):
        make_dataset(chess_data, 5, settings=TINY_GAMES.__class__(horizon=4), test_every=3)
