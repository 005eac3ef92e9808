"""Self-play data throughput of ``dlm chess make``: positions per second per core.

    OMP_NUM_THREADS=1 python benchmarks/chess_make_throughput.py --games 20 --nodes 1000

Makes ``--games`` games with one worker (one Stockfish process, one core) into a temporary
folder, with and without action values (SA-V's labels), and prints positions/s and searches
per position for each; ``--workers 2`` runs two workers side by side on two cores.
"""

from __future__ import annotations

import argparse
import tempfile

from dlm.chess.dataset import make_dataset
from dlm.chess.engine import EngineSettings
from dlm.chess.selfplay import GameSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    for action_values in (True, False):
        settings = GameSettings(engine=EngineSettings(nodes=args.nodes), action_values=action_values)
        with tempfile.TemporaryDirectory() as out:
            r = make_dataset(out, args.games, workers=args.workers, settings=settings, shard_games=1)
        print(
            f"action_values={action_values}: {r.positions} positions of {r.games} games in "
            f"{r.seconds:.1f} s = {r.positions_per_second / args.workers:.1f} positions/s per core, "
            f"{r.searches / r.positions:.2f} searches per position, "
            f"{r.positions / r.games:.0f} positions per game"
        )


if __name__ == "__main__":
    main()
