"""``dlm chess``: play through stdin, eval's three tables, puzzles, and the refusals."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import chess
import chess.pgn

from chess_helpers import needs_stockfish
from dlm.cli.main import main

pytestmark = needs_stockfish


def test_chess_play_rejects_an_illegal_move_and_plays_on(tiny_agents, tmp_path):
    pgn = tmp_path / "game.pgn"
    moves = "e2e5\nzz9\ne4\nresign\n"
    done = subprocess.run(
        [sys.executable, "-m", "dlm.cli.main", "chess", "play", "--model",
         str(tiny_agents["s-a"]), "--pgn", str(pgn), "--ascii"],
        input=moves, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "e2e5 is not legal here" in out
    assert "'zz9' is not a move" in out
    game = chess.pgn.read_game(io.StringIO(pgn.read_text()))
    played = list(game.mainline_moves())
    assert played[0] == chess.Move.from_uci("e2e4") and len(played) == 2  # e4 and the reply
    assert game.headers["Result"] == "0-1"  # white (the human) resigned


def test_chess_play_lets_diffusearch_open_as_white(tiny_agents, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dlm.cli.main", "chess", "play", "--model",
         str(tiny_agents["diffusearch"]), "--color", "black", "--steps", "3",
         "--pgn", str(tmp_path / "g.pgn")],
        input="quit\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    game = chess.pgn.read_game(io.StringIO((tmp_path / "g.pgn").read_text()))
    moves = list(game.mainline_moves())
    assert len(moves) == 1 and moves[0] in chess.Board().legal_moves  # its move, then quit
    assert game.headers["Result"] == "*"


def test_chess_eval_writes_the_three_tables(tiny_agents, chess_data, tmp_path, capsys):
    from dlm.chess.puzzles import Puzzle, write_puzzles

    puzzles = tmp_path / "p.csv"
    # a mate in one (Ra8#) after black's b7b6
    write_puzzles(
        puzzles,
        [Puzzle("m1", "6k1/1p3ppp/8/8/8/8/5PPP/R5K1 b - - 0 1", ("b7b6", "a1a8"), 800, themes=("mateIn1",))],
    )
    out = tmp_path / "eval"
    code = main(
        ["chess", "eval", "--agents", str(tiny_agents["s-a"]), str(tiny_agents["s-v"]), "mcts",
         "--data", str(chess_data), "--positions", "4", "--puzzles", str(puzzles),
         "--games", "2", "--anchors", "random", "--max-plies", "20", "--simulations", "8",
         "--out", str(out), "--quiet"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Action accuracy" in printed and "Puzzles" in printed and "Elo" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["action_accuracy"]) == {"s-a", "s-v", "mcts"}
    assert report["puzzles"]["s-v"]["mateIn1"] == 1.0  # S-V sees the mate by the rules
    # 3 agents round robin (3 pairs) + each against random, one opening, both colours
    assert report["games"] == (3 + 3) * 2
    assert report["elo"]["random"]["elo"] == 0.0
    rates = report["illegal_in_games"]  # over the round robin and the gauntlet together
    assert set(rates) == {"s-a", "s-v", "mcts"} and rates["s-v"] == 0.0
    games = (out / "games.pgn").read_text().count("[Event ")
    assert games == report["games"]


def test_chess_commands_refuse_bad_input_before_work(tmp_path, capsys):
    assert main(["chess", "eval", "--agents", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["chess", "make", "--games", "0", "--out", str(tmp_path / "d")]) == 2
    assert "--games must be at least 1" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["chess", "make", "--games", "1", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["chess", "play", "--model", str(tmp_path / "none")]) == 2
    assert "--model" in capsys.readouterr().err
