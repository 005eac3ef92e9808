"""``dlm chess make``: Stockfish-labelled self-play positions, sharded, parallel and resumable.

Layout of an output directory::

    DIR/settings.json             the run's settings (a rerun must use the same ones)
    DIR/shards/00000-00019.jsonl  the records of games 0..19, one JSON object per position
    ...

Games are cut into shards of ``shard_games`` (``SHARD_GAMES`` = 20) consecutive ids, and a shard is written at once
(atomically) when all its games are labelled, so a killed run leaves only whole shards: the
rerun makes exactly the missing ones, and no record is lost or written twice. Since a game is
a pure function of its id and the settings (``selfplay``), which worker makes it and in what
order changes nothing: the same command gives the same files.

Split by game: game ``i`` is held out (``test``) when ``i % test_every == test_every - 1``
(every tenth game by default), so no position of a test game is trained on.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import chess

from dlm.atomic import atomic_write_text, check_output_dir
from dlm.errors import DlmUserError

from .engine import EngineSettings, open_engine
from .openings import load_openings
from .selfplay import GameSettings, play_and_label

__all__ = ["SHARD_GAMES", "MakeReport", "game_phase", "game_split", "load_records", "make_dataset"]

SHARD_GAMES = 20
_SETTINGS = "settings.json"


@dataclass
class MakeReport:
    games: int  # made by this run
    positions: int
    searches: int
    seconds: float
    skipped_shards: int  # already complete from an earlier run

    @property
    def positions_per_second(self) -> float:
        return self.positions / self.seconds if self.seconds > 0 else 0.0


def game_phase(board: chess.Board) -> str:
    """The phase a position's accuracy is reported under, by its pieces: opening (26 or
    more), middlegame (14 or more), endgame."""
    pieces = len(board.piece_map())
    return "opening" if pieces >= 26 else "middlegame" if pieces >= 14 else "endgame"


def game_split(game_id: int, test_every: int = 10) -> str:
    return "test" if game_id % test_every == test_every - 1 else "train"


def _plan(games: int, shard_games: int) -> list[tuple[int, int]]:
    return [(s, min(s + shard_games, games)) for s in range(0, games, shard_games)]


def _shard_name(start: int, end: int) -> str:
    return f"{start:05d}-{end - 1:05d}.jsonl"


def _settings_record(settings: GameSettings, test_every: int, shard_games: int) -> dict[str, Any]:
    record = asdict(settings)
    record["test_every"] = test_every
    record["shard_games"] = shard_games
    record["format"] = 2  # 2: every legal move has an action value
    return record


_WORKER: dict[str, Any] = {}


def _worker_start(settings: GameSettings) -> None:
    context = open_engine(settings.engine)
    _WORKER["engine"] = context.__enter__()
    _WORKER["context"] = context
    _WORKER["openings"] = load_openings()
    _WORKER["settings"] = settings


def _make_shard(job: tuple[int, int, str]) -> tuple[int, int, int]:
    start, end, path = job
    records, searches = [], 0
    for game_id in range(start, end):
        game, n = play_and_label(_WORKER["engine"], game_id, _WORKER["openings"], _WORKER["settings"])
        records += game
        searches += n
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return end - start, len(records), searches


def make_dataset(
    out: str | os.PathLike,
    games: int,
    *,
    workers: int = 1,
    settings: GameSettings | None = None,
    test_every: int = 10,
    shard_games: int = SHARD_GAMES,
    progress: Callable[[int], object] | None = None,
) -> MakeReport:
    """Make (or finish) ``games`` self-play games into ``out``; ``progress`` gets games done."""
    settings = settings or GameSettings()
    if games < 1:
        raise DlmUserError(f"--games must be at least 1; got {games}")
    if workers < 1:
        raise DlmUserError(f"--workers must be at least 1; got {workers}")
    if test_every < 2:
        raise DlmUserError(f"--test-every must be at least 2; got {test_every}")
    if shard_games < 1:
        raise DlmUserError(f"--shard-games must be at least 1; got {shard_games}")
    if settings.horizon < 1:
        raise DlmUserError(f"--horizon must be at least 1; got {settings.horizon}")
    root = check_output_dir(out, "--out")
    wanted = _settings_record(settings, test_every, shard_games)
    settings_path = root / _SETTINGS
    if settings_path.exists():
        have = json.loads(settings_path.read_text())
        diff = sorted(k for k in set(have) | set(wanted) if have.get(k) != wanted.get(k))
        if diff:
            raise DlmUserError(
                f"{root} holds data made with other settings ({', '.join(diff)} differ); "
                "use a new --out or the same settings to continue it"
            )
    shards = root / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    if not settings_path.exists():
        atomic_write_text(settings_path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    _check_shard_plan(shards, games, shard_games)
    jobs, skipped = [], 0
    for start, end in _plan(games, shard_games):
        path = shards / _shard_name(start, end)
        if path.exists():
            skipped += 1
            if progress is not None:
                progress(end - start)
        else:
            jobs.append((start, end, str(path)))
    t0 = time.perf_counter()
    made = positions = searches = 0
    for n_games, n_records, n_searches in _run(jobs, workers, settings):
        made += n_games
        positions += n_records
        searches += n_searches
        if progress is not None:
            progress(n_games)
    return MakeReport(made, positions, searches, time.perf_counter() - t0, skipped)


def _check_shard_plan(shards: Path, games: int, shard_games: int) -> None:
    """Refuse shards this game count would not make but whose games it covers (left by a run
    with another --games whose last shard was partial): the records would overlap."""
    expected = {_shard_name(s, e) for s, e in _plan(games, shard_games)}
    for path in sorted(shards.glob("*.jsonl")):
        if path.name not in expected and int(path.name.split("-")[0]) < games:
            raise DlmUserError(
                f"{path} was made by a run with another --games and overlaps this one's games; "
                "continue with that run's --games (or a multiple of "
                f"{shard_games} above it), or use a new --out"
            )


def _run(jobs: list, workers: int, settings: GameSettings) -> Iterator[tuple[int, int, int]]:
    if not jobs:
        return
    if workers == 1:
        _worker_start(settings)
        try:
            for job in jobs:
                yield _make_shard(job)
        finally:
            _WORKER.pop("context").__exit__(None, None, None)
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(jobs)), _worker_start, (settings,)) as pool:
        yield from pool.imap_unordered(_make_shard, jobs)


def load_records(root: str | os.PathLike, split: str | None = None) -> list[dict[str, Any]]:
    """The records of a ``dlm chess make`` directory in game order (``split``: only
    ``train`` or ``test`` games)."""
    root = Path(root)
    settings_path = root / _SETTINGS
    if not settings_path.is_file():
        raise DlmUserError(f"{root} is not a `dlm chess make` directory (no {_SETTINGS})")
    test_every = json.loads(settings_path.read_text())["test_every"]
    records = []
    for path in sorted((root / "shards").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if split is None or game_split(record["game"], test_every) == split:
                records.append(record)
    if not records:
        raise DlmUserError(f"{root} holds no {split or ''} records yet; run `dlm chess make` first")
    return records


def engine_settings_of(root: str | os.PathLike) -> EngineSettings:
    """The engine limits a directory's labels were made with."""
    record = json.loads((Path(root) / _SETTINGS).read_text())
    return EngineSettings(**record["engine"])
