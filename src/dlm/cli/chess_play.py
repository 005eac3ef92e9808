"""``dlm chess play``: play a trained chess agent in the terminal.

    dlm chess play --model runs/chess-ds/model [--color black] [--pgn game.pgn]

The board in unicode, your move in SAN (``Nf3``) or UCI (``g1f3``); a malformed or illegal
move is refused with a one-line reason and you move again. After each of its moves the model
shows the future it predicted (DiffuSearch imagines both sides' next moves). ``undo`` takes
back your last move and its reply, ``resign`` ends the game, ``moves`` lists the legal moves,
``quit`` (or end of input) stops; the game is saved as PGN at the end (``--pgn``).
``--model mcts:SA_DIR,SV_DIR`` plays the MCTS agent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import check_output_path, int_at_least

__all__ = ["HELP", "add_arguments", "run"]

HELP = "play a trained chess agent in the terminal"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR", help="a trained chess model")
    parser.add_argument("--color", choices=("white", "black"), default="white", help="yours")
    parser.add_argument("--pgn", metavar="FILE", default="game.pgn", help="where the game goes")
    parser.add_argument("--steps", type=int_at_least(1), default=20, help="DiffuSearch T")
    parser.add_argument(
        "--reference-decoder",
        action="store_true",
        help="DiffuSearch decodes as its published code does: every position re-predicted "
        "each step (dlm keeps committed tokens)",
    )
    parser.add_argument("--ascii", action="store_true", help="letters instead of unicode pieces")


def run(args: argparse.Namespace) -> int:
    from dlm.errors import DlmUserError

    specs = args.model[5:].split(",") if args.model.startswith("mcts:") else [args.model]
    for spec in specs:
        if not Path(spec).is_dir():
            raise DlmUserError(f"--model {spec} is not a folder; give a trained chess model")
    check_output_path(args.pgn, "--pgn")
    import chess

    from dlm.chess.play import play_terminal
    from dlm.evaluation.chess_eval import build_agents

    if args.model.startswith("mcts:"):
        player = build_agents([*specs, "mcts"])[-1]
    else:
        player = build_agents(
            specs, steps=args.steps, reference_decoder=args.reference_decoder
        )[0]
    play_terminal(
        player,
        human_color=chess.WHITE if args.color == "white" else chess.BLACK,
        input_stream=sys.stdin,
        output_stream=sys.stdout,
        pgn_path=args.pgn,
        unicode=not args.ascii,
    )
    return 0
