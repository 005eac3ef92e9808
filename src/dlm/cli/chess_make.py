"""``dlm chess make``: Stockfish-labelled self-play positions for the chess agents.

    dlm chess make --games 10000 --workers 2 --out data/chess

Every position of every game is a record (its best move, the h-move future line by Stockfish
playing both sides, its win probability and every legal move's), written in shards of 20
games; a killed run continues where it stopped when the same command is run again
(``dlm.chess.dataset``). A bar counts the games on a terminal (none in a pipe or with
``--quiet``); the last line reports positions per second per worker.
"""

from __future__ import annotations

import argparse

from .common import add_quiet_option, int_at_least, progress_disable

__all__ = ["HELP", "add_arguments", "run"]

HELP = "make Stockfish-labelled self-play positions (sharded, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--games", type=int_at_least(1), required=True, help="self-play games")
    parser.add_argument("--out", metavar="DIR", required=True, help="output directory")
    parser.add_argument("--workers", type=int_at_least(1), default=1, help="engine processes")
    parser.add_argument(
        "--nodes", type=int_at_least(1), default=1000, help="Stockfish nodes per search"
    )
    parser.add_argument("--hash-mb", type=int_at_least(1), default=16, help="Stockfish hash")
    parser.add_argument(
        "--horizon", type=int_at_least(1), default=4, help="moves in each future line (h)"
    )
    parser.add_argument("--max-plies", type=int_at_least(1), default=200, help="game length cap")
    parser.add_argument(
        "--no-action-values",
        action="store_true",
        help="skip every legal move's value (SA-V's labels): about half the searches",
    )
    parser.add_argument(
        "--test-every", type=int_at_least(2), default=10, help="every N-th game is held out"
    )
    parser.add_argument(
        "--shard-games", type=int_at_least(1), default=20, help="games per resumable shard"
    )
    parser.add_argument("--seed", type=int, default=0)
    add_quiet_option(parser)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dlm.chess.dataset import make_dataset
    from dlm.chess.engine import EngineSettings, stockfish_path
    from dlm.chess.selfplay import GameSettings

    stockfish_path()  # not installed: say so before anything is written
    settings = GameSettings(
        engine=EngineSettings(nodes=args.nodes, hash_mb=args.hash_mb),
        horizon=args.horizon,
        max_plies=args.max_plies,
        action_values=not args.no_action_values,
        seed=args.seed,
    )
    with tqdm(
        total=args.games, desc="chess make", unit="game", disable=progress_disable(args)
    ) as bar:
        report = make_dataset(
            args.out,
            args.games,
            workers=args.workers,
            settings=settings,
            test_every=args.test_every,
            shard_games=args.shard_games,
            progress=bar.update,
        )
    rate = report.positions_per_second / args.workers
    print(
        f"{report.games} games made ({report.skipped_shards} shards already there), "
        f"{report.positions} positions, {report.searches} searches in {report.seconds:.0f} s: "
        f"{report.positions_per_second:.1f} positions/s, {rate:.1f} per worker -> {args.out}"
    )
    return 0
