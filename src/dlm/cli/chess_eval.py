"""``dlm chess eval``: the DiffuSearch comparison's three tables for trained chess agents.

    dlm chess eval --agents runs/chess-ds/model runs/chess-sa/model runs/chess-sv/model \
        runs/chess-sav/model mcts --data data/chess --puzzles data/chess/puzzles.csv \
        --games 8 --out runs/chess-eval

Action accuracy on ``--positions`` held-out positions of ``--data``'s test games; puzzle
accuracy per level on ``--puzzles`` (a Lichess-form CSV, ``dlm chess puzzles`` makes one);
Elo from a round robin of the agents and a gauntlet against ``--anchors``, ``--games`` games
per pairing (half the openings' count, each opening once with each colour). ``mcts`` among
the agents is PUCT over the S-A and S-V models given. Every model folder and file is checked
before anything is loaded; the tables print and go to ``--out`` (report.txt, report.json,
games.pgn), each written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_quiet_option, check_output_dir, int_at_least, progress_disable

__all__ = ["HELP", "add_arguments", "run"]

HELP = "action accuracy, puzzles and Elo of trained chess agents"
TABLES = ("accuracy", "puzzles", "elo")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agents", nargs="+", required=True, metavar="DIR|mcts", help="trained model folders"
    )
    parser.add_argument("--data", metavar="DIR", help="`dlm chess make` data (its test games)")
    parser.add_argument("--positions", type=int_at_least(1), default=1000)
    parser.add_argument("--puzzles", metavar="FILE.csv", help="Lichess-form puzzles")
    parser.add_argument(
        "--games", type=int_at_least(2), default=8, help="games per pairing (even: both colours)"
    )
    parser.add_argument(
        "--anchors",
        nargs="*",
        default=["random", "sf-n1", "sf-n10"],
        help="random, sf-nN (Stockfish at N nodes), sf-eloE (UCI_Elo E >= 1350)",
    )
    parser.add_argument("--max-plies", type=int_at_least(1), default=300)
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--simulations", type=int_at_least(1), default=100, help="MCTS")
    parser.add_argument("--c-puct", type=float, default=0.1, help="MCTS exploration")
    parser.add_argument("--steps", type=int_at_least(1), default=20, help="DiffuSearch T")
    parser.add_argument(
        "--reference-decoder",
        action="store_true",
        help="DiffuSearch decodes as its published code does: every position re-predicted "
        "each step (dlm keeps committed tokens)",
    )
    parser.add_argument("--out", metavar="DIR", help="where the tables and games go")
    add_quiet_option(parser)


def _check(args: argparse.Namespace) -> None:
    from dlm.errors import DlmUserError

    for spec in args.agents:
        if spec != "mcts" and not Path(spec).is_dir():
            raise DlmUserError(f"--agents {spec} is not a folder; give trained model folders")
    if "accuracy" in args.tables and not args.data:
        raise DlmUserError("the accuracy table needs --data (a `dlm chess make` folder)")
    if "puzzles" in args.tables and args.puzzles and not Path(args.puzzles).is_file():
        raise DlmUserError(f"--puzzles {args.puzzles} is not a file")
    if args.games % 2:
        raise DlmUserError(f"--games must be even (each opening with both colours); got {args.games}")
    if args.out:
        check_output_dir(args.out, "--out")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from tqdm.auto import tqdm

    from dlm.chess import puzzles as puzzle_lib
    from dlm.chess.dataset import load_records
    from dlm.chess.openings import load_openings
    from dlm.chess.ratings import fit_ratings
    from dlm.chess.tournament import Adjudicator, gauntlet, round_robin, save_pgn
    from dlm.evaluation.chess_eval import (
        ChessReport,
        action_accuracy,
        build_agents,
        make_anchors,
    )

    tables = set(args.tables)
    records = load_records(args.data, "test")[: args.positions] if "accuracy" in tables else []
    puzzle_set = puzzle_lib.read_puzzles(args.puzzles) if args.puzzles and "puzzles" in tables else []
    players = build_agents(
        args.agents,
        simulations=args.simulations,
        c_puct=args.c_puct,
        steps=args.steps,
        reference_decoder=args.reference_decoder,
    )
    report = ChessReport()
    disable = progress_disable(args)
    if records:
        with tqdm(total=len(players) * len(records), desc="accuracy", disable=disable) as bar:
            report.accuracy = action_accuracy(players, records, bar.update)
    if puzzle_set:
        with tqdm(total=len(players) * len(puzzle_set), desc="puzzles", disable=disable) as bar:
            report.puzzles = puzzle_lib.evaluate_puzzles(players, puzzle_set, progress=bar.update)
    pgn = []
    if "elo" in tables:
        openings = load_openings()[: args.games // 2]
        anchors = make_anchors(args.anchors)
        pairs = len(players) * (len(players) - 1) // 2 + len(players) * len(anchors)
        try:
            with Adjudicator() as judge, tqdm(
                total=pairs * 2 * len(openings), desc="games", disable=disable
            ) as bar:
                results, decisions, illegal = [], {}, {}
                for part in (
                    round_robin(players, openings, adjudicator=judge, max_plies=args.max_plies, progress=bar.update)
                    if len(players) > 1
                    else None,
                    gauntlet(players, anchors, openings, adjudicator=judge, max_plies=args.max_plies, progress=bar.update)
                    if anchors
                    else None,
                ):
                    if part is None:
                        continue
                    results += part.results
                    pgn += part.records
                    for name, n in part.decisions.items():  # summed over both parts
                        decisions[name] = decisions.get(name, 0) + n
                        illegal[name] = illegal.get(name, 0) + part.illegal_predictions[name]
        finally:
            for anchor in anchors:
                close = getattr(anchor, "close", None)
                if close is not None:
                    close()
        report.illegal_in_games = {
            p.name: illegal[p.name] / decisions[p.name] for p in players if decisions.get(p.name)
        }
        anchor = "random" if "random" in args.anchors else None
        report.ratings = fit_ratings(results, anchor=anchor)
        report.games = len(results)
    print(report.text())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report.write(out)
        if pgn:
            save_pgn(pgn, out / "games.pgn")
        print(f"-> {out}/report.txt, report.json" + (", games.pgn" if pgn else ""))
    return 0
