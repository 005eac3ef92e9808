"""``dlm chess puzzles``: puzzles made offline with Stockfish from held-out self-play games.

    dlm chess puzzles --data data/chess --out data/chess/puzzles.csv --max 500

Every position of ``--data``'s test games (the move that led to it is the puzzle's first,
the opponent's, move) is searched at ``--nodes``; forced mates and positions with a unique
best move by a clear margin are kept (``dlm.chess.puzzles``), written in the Lichess puzzle
CSV form, atomically.
"""

from __future__ import annotations

import argparse

from .common import add_quiet_option, check_output_path, int_at_least, progress_disable

__all__ = ["HELP", "add_arguments", "run"]

HELP = "make Lichess-form puzzles from held-out self-play games with Stockfish"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", required=True, help="`dlm chess make` data")
    parser.add_argument("--out", metavar="FILE.csv", required=True)
    parser.add_argument("--max", type=int_at_least(1), default=None, help="stop after N puzzles")
    parser.add_argument("--nodes", type=int_at_least(1), default=20_000, help="per search")
    parser.add_argument(
        "--split", choices=("test", "train"), default="test", help="which games to mine"
    )
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.out, "--out")
    from tqdm.auto import tqdm

    from dlm.chess import puzzles
    from dlm.chess.dataset import load_records
    from dlm.chess.engine import stockfish_path

    stockfish_path()
    sources = puzzles.sources_from_records(load_records(args.data, args.split))
    settings = puzzles.PuzzleSettings(nodes=args.nodes)
    with tqdm(total=len(sources), desc="puzzles", disable=progress_disable(args)) as bar:
        found = puzzles.generate_puzzles(
            sources, settings, max_puzzles=args.max, progress=bar.update
        )
    puzzles.write_puzzles(args.out, found)
    levels: dict[str, int] = {}
    for p in found:
        levels[puzzles.puzzle_level(p)] = levels.get(puzzles.puzzle_level(p), 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(levels.items(), key=lambda kv: puzzles.level_order(kv[0])))
    print(f"{len(found)} puzzles from {len(sources)} positions ({summary}) -> {args.out}")
    return 0
