"""Chess puzzles: made offline with Stockfish, stored as Lichess puzzle CSV, scored by the
searchless-chess rule.

Nothing ships the Lichess puzzle database offline, so puzzles are *generated* from positions
of our own games (the self-play data set) and written in the Lichess form, which is what
DiffuSearch and searchless-chess (Ruoss et al. 2024) evaluate on.

**Form** (``write_puzzles`` / ``read_puzzles``). Columns
``PuzzleId,FEN,Moves,Rating,RatingDeviation,Popularity,NbPlays,Themes,GameUrl,OpeningTags``.
``FEN`` is the position *before* the opponent's move; ``Moves`` (space-separated UCI) starts
with that opponent move, then alternates solver move / opponent reply and ends on a solver
move. A puzzle is therefore made from a *source*: the position before a move of a game and
that move (``Source``); ``sources_from_game`` (UCI moves from a start FEN) and
``sources_from_positions`` (a game's consecutive FENs) turn a game into one source per move,
and ``sources_from_records`` takes self-play records (their ``fen`` and ``played`` move).
Reading needs the columns ``PuzzleId, FEN, Moves, Rating`` (the ones searchless-chess reads);
the rest default to empty or 0. Every move of every row is checked to be legal, and a bad row
raises ``DlmUserError`` naming its line and id.

**Generation** (``generate_puzzles``). The solver is the side to move after the source move.
Every search is Stockfish with ``Threads=1``, a fixed node limit (``PuzzleSettings.nodes``,
20k by default, ~40 ms on one core) and an empty hash (python-chess sends ``ucinewgame``
for each new ``game`` key), from the puzzle's own FEN and moves, so a puzzle depends on its
source alone: the same sources give the same file, in any order of work or process. Solver
moves are judged with a MultiPV=2 search (the best two moves); opponent replies are the
engine's best move (a MultiPV=1 search, ``dlm.chess.engine.search``). Two kinds are kept:

* *forced mates*: the search reports mate in n <= ``max_mate`` (3) for the solver. The line
  follows the engine's mating move at each solver turn and its best defence at each opponent
  turn; it must still report a mate at every solver turn and end in checkmate after at most
  ``max_mate`` solver moves, else the position is dropped (the node limit misjudged it). A
  solver move before the last is rejected as ambiguous when the second-best move also mates
  at most as fast: the scoring rule demands the line's move there, so two equally fast
  mates would make a correct answer fail. The last move needs no such test: any mate counts.
* *a unique best move*: the best move's win probability (``engine.win_probability``,
  searchless-chess's formula) is at least ``min_win`` (0.675, i.e. +200 cp: the solver
  ends up clearly better, not merely holding an equal game) and exceeds the second-best's by
  at least ``margin`` (0.25, e.g. +400 cp against an equal position, or a piece against
  nothing). The line is extended, engine reply then solver move, while the next solver move
  passes the same test, up to ``max_unique_moves`` (3) solver moves; it ends at the last
  solver move that passed. A move that mates at once is always accepted (any mate counts
  when scoring). A position whose solver has one legal move is never a puzzle. The source
  move must also have been a mistake, as every Lichess puzzle's first move is: the solver's
  win probability after it (with the best answer) exceeds the solver's before it (a search
  of the source position) by at least ``min_gain`` (0.15), else the recaptures of trades
  and the only moves that merely keep an existing advantage would be most of the puzzles,
  and a one-step policy would solve them. Mates need no mistake: a forced mate is a puzzle
  however it arose.

A line that ends in checkmate is a mate puzzle whichever way it was found.

**Difficulty.** A puzzle's *level* (``puzzle_level``) is ``mateIn<n>`` (n solver moves to
mate) or ``unique<n>`` (n solver moves, not ending in mate); it comes from the line alone,
not the themes, so it means the same for real Lichess puzzles (whose non-mate puzzles count
as ``unique<n>`` by length). ``Rating`` is a nominal difficulty, not a played rating:
``400 + 400 n`` for mate in n (800, 1200, 1600) and ``600 + 400 n`` for a unique line of n
moves (1000, 1400, 1800): longer lines are harder, and a mate is easier than a quiet line
of the same length because checks narrow the search. ``RatingDeviation``, ``Popularity``
and ``NbPlays`` count play on Lichess; generated puzzles have none, so they are 0.
``Themes`` uses Lichess's names: ``mate mateIn<n>``, or ``advantage`` / ``crushing``
(best win probability below / at least 0.9, i.e. +600 cp; ``equality`` below 0.675 when
``min_win`` is lowered), plus the length: ``oneMove``, ``short`` (2), ``long`` (3),
``veryLong`` (4+). ``PuzzleId`` is the first 12 hex digits of a SHA-1 of FEN and moves, so
the same puzzle found twice (a repeated position) is kept once.

**Scoring** (``solve`` / ``evaluate_puzzles``), the searchless-chess rule: set up FEN, play
Moves[0] (the opponent), then at each solver turn the player's move must equal the line's,
except that any move that gives checkmate solves the puzzle at once; opponent replies are
played from the line. A move the player returns that is not legal fails the puzzle (the
``Player`` protocol promises legal moves; failing one puzzle keeps a buggy answer from
ending a whole evaluation). ``evaluate_puzzles`` gives accuracy per level per player;
``format_table`` prints it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
import chess.engine

from dlm.atomic import atomic_write_text, check_output_path
from dlm.errors import DlmUserError

from .engine import EngineSettings, open_engine, search, win_probability
from .player import Player

__all__ = [
    "COLUMNS",
    "Progress",
    "Puzzle",
    "PuzzleResults",
    "PuzzleSettings",
    "Source",
    "evaluate_puzzles",
    "find_puzzle",
    "format_table",
    "generate_puzzles",
    "level_order",
    "puzzle_level",
    "read_puzzles",
    "solve",
    "sources_from_game",
    "sources_from_positions",
    "sources_from_records",
    "write_puzzles",
]

COLUMNS = (
    "PuzzleId",
    "FEN",
    "Moves",
    "Rating",
    "RatingDeviation",
    "Popularity",
    "NbPlays",
    "Themes",
    "GameUrl",
    "OpeningTags",
)
_REQUIRED = ("PuzzleId", "FEN", "Moves", "Rating")
_ADVANTAGE = 0.675  # win probability of +200 cp: below it a line is "equality"
_CRUSHING = 0.9  # +600 cp
_LENGTH_THEMES = {1: "oneMove", 2: "short", 3: "long"}

Progress = Callable[[int], object]


# ---------------------------------------------------------------------------------------------
# Puzzles and their sources


@dataclass(frozen=True)
class Puzzle:
    """One puzzle in Lichess form: ``moves[0]`` is the opponent's move from ``fen``, then the
    solution (solver, reply, solver, ..., ending on a solver move), all UCI."""

    puzzle_id: str
    fen: str
    moves: tuple[str, ...]
    rating: int
    rating_deviation: int = 0
    popularity: int = 0
    nb_plays: int = 0
    themes: tuple[str, ...] = ()
    game_url: str = ""
    opening_tags: tuple[str, ...] = ()

    @property
    def solution(self) -> tuple[str, ...]:
        """The solver's moves, in order."""
        return self.moves[1::2]

    @property
    def level(self) -> str:
        return puzzle_level(self)

    def start(self) -> chess.Board:
        """The board the solver faces: ``fen`` with the opponent's move played."""
        board = chess.Board(self.fen)
        board.push_uci(self.moves[0])
        return board


@dataclass(frozen=True)
class Source:
    """Where a puzzle may start: the position before a game move (``fen``), that move (UCI,
    the puzzle's opponent move) and where it comes from (``GameUrl``)."""

    fen: str
    move: str
    url: str = ""


def _ply_url(url: str, ply: int) -> str:
    return f"{url}#{ply}" if url else ""


def sources_from_game(
    moves: Sequence[str], start_fen: str = chess.STARTING_FEN, url: str = ""
) -> list[Source]:
    """One source per move of a game given as UCI ``moves`` from ``start_fen``; each source's
    url is ``url#<ply>``, the ply of the position to solve (Lichess's convention)."""
    board = _board(start_fen, "the game's start FEN")
    out = []
    for ply, uci in enumerate(moves, start=1):
        try:
            move = board.parse_uci(uci)
        except ValueError:
            raise DlmUserError(
                f"game {url or '(no url)'}: move {ply} {uci!r} is not legal after "
                f"{board.fen()}; give the game's moves in UCI from its start position"
            ) from None
        out.append(Source(board.fen(), move.uci(), _ply_url(url, ply)))
        board.push(move)
    return out


def sources_from_positions(fens: Sequence[str], url: str = "") -> list[Source]:
    """One source per pair of consecutive positions of a game (FENs, each one move after the
    one before); the move between them is found among the legal moves."""
    out = []
    for ply in range(1, len(fens)):
        before = _board(fens[ply - 1], f"game {url or '(no url)'} position {ply - 1}")
        after = _board(fens[ply], f"game {url or '(no url)'} position {ply}")
        target = (after.board_fen(), after.turn, after.castling_rights)
        for move in before.legal_moves:
            before.push(move)
            key = (before.board_fen(), before.turn, before.castling_rights)
            before.pop()
            if key == target:
                break
        else:
            raise DlmUserError(
                f"game {url or '(no url)'}: positions {ply - 1} and {ply} are not one legal move "
                "apart; pass a game's consecutive positions in order"
            )
        out.append(Source(before.fen(), move.uci(), _ply_url(url, ply)))
    return out


def sources_from_records(
    records: Iterable[Mapping[str, Any]], name: str = "selfplay"
) -> list[Source]:
    """One source per self-play record (``dlm.chess.selfplay``): its ``fen`` and the move
    ``played`` from it; the url is ``<name>/game<game>#<ply + 1>`` when the record has
    ``game`` and ``ply``."""
    out = []
    for k, record in enumerate(records):
        if "fen" not in record or "played" not in record:
            raise DlmUserError(
                f"record {k} has no 'fen' or no 'played' key; give self-play records "
                "(dlm chess make) or build Source(fen, move) yourself"
            )
        url = ""
        if "game" in record and "ply" in record:
            url = f"{name}/game{record['game']}#{int(record['ply']) + 1}"
        out.append(Source(str(record["fen"]), str(record["played"]), url))
    return out


def _board(fen: str, what: str) -> chess.Board:
    try:
        board = chess.Board(fen)
    except ValueError:
        raise DlmUserError(f"{what}: {fen!r} is not a valid FEN; fix it") from None
    if not board.is_valid():
        raise DlmUserError(f"{what}: {fen!r} is not a legal chess position; fix it")
    return board


# ---------------------------------------------------------------------------------------------
# Levels


_LEVEL = re.compile(r"(mateIn|unique)(\d+)")


def puzzle_level(puzzle: Puzzle) -> str:
    """``mateIn<n>`` when the line ends in checkmate, else ``unique<n>``; n is the number of
    solver moves."""
    board = chess.Board(puzzle.fen)
    for uci in puzzle.moves:
        board.push_uci(uci)
    return f"{'mateIn' if board.is_checkmate() else 'unique'}{len(puzzle.solution)}"


def level_order(level: str) -> tuple[int, int, str]:
    """Sort key: mates by length, then unique lines by length, then anything else by name."""
    match = _LEVEL.fullmatch(level)
    if match is None:
        return (2, 0, level)
    return (0 if match.group(1) == "mateIn" else 1, int(match.group(2)), "")


def _rating(mate: bool, n: int) -> int:
    return 400 + 400 * n if mate else 600 + 400 * n


def _themes(mate: bool, n: int, best_win: float) -> tuple[str, ...]:
    if mate:
        kind: tuple[str, ...] = ("mate", f"mateIn{n}")
    elif best_win >= _CRUSHING:
        kind = ("crushing",)
    elif best_win >= _ADVANTAGE:
        kind = ("advantage",)
    else:
        kind = ("equality",)
    return (*kind, _LENGTH_THEMES.get(n, "veryLong"))


def _puzzle_id(fen: str, moves: Sequence[str]) -> str:
    return hashlib.sha1(f"{fen}|{' '.join(moves)}".encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True)
class PuzzleSettings:
    """What counts as a puzzle; see the module docstring for why each default."""

    nodes: int = 20_000  # per search
    max_mate: int = 3  # longest forced mate kept, in solver moves
    margin: float = 0.25  # best move's win probability minus the second's, at least
    min_win: float = _ADVANTAGE  # best move's win probability, at least (unique lines)
    max_unique_moves: int = 3  # longest unique line, in solver moves
    min_gain: float = 0.15  # the source move's loss for its side, at least (unique lines)
    hash_mb: int = 16

    def __post_init__(self) -> None:
        for name in ("nodes", "max_mate", "max_unique_moves", "hash_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DlmUserError(f"puzzle {name} must be a whole number >= 1; got {value!r}")
        for name in ("margin", "min_win"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise DlmUserError(f"puzzle {name} must be a number in (0, 1]; got {value!r}")
        value = self.min_gain
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise DlmUserError(f"puzzle min_gain must be a number in [0, 1]; got {value!r}")


@dataclass(frozen=True)
class _Ranked:
    move: chess.Move
    win: float
    mate: int | None  # mate in n for the side to move (> 0), or against it (< 0)


def _top_two(engine: chess.engine.SimpleEngine, board: chess.Board, nodes: int) -> list[_Ranked]:
    """The best two moves (one when only one is legal), from an empty hash."""
    infos = engine.analyse(
        board,
        chess.engine.Limit(nodes=nodes),
        multipv=min(2, board.legal_moves.count()),
        game=object(),
    )
    out = []
    for info in infos:
        if not info.get("pv"):
            continue
        score = info["score"]
        out.append(
            _Ranked(info["pv"][0], win_probability(score, board.turn), score.pov(board.turn).mate())
        )
    return out


def _mates_now(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def _mate_line(
    engine: chess.engine.SimpleEngine,
    board: chess.Board,
    first: list[_Ranked],
    settings: PuzzleSettings,
) -> list[chess.Move] | None:
    """The engine's forced mate from ``board`` (the solver to move), or None."""
    line: list[chess.Move] = []
    ranked = first
    for _ in range(settings.max_mate):
        if not ranked:
            return None
        best = ranked[0]
        if best.mate is None or best.mate <= 0:
            return None  # the mate was lost at this node limit
        if _mates_now(board, best.move):
            line.append(best.move)
            return line
        if len(ranked) > 1 and ranked[1].mate is not None and 0 < ranked[1].mate <= best.mate:
            return None  # two moves mate as fast: the line's move would not be the only answer
        board.push(best.move)
        line.append(best.move)
        if board.is_game_over(claim_draw=False):
            return None
        reply = search(engine, board, settings.nodes).best
        assert reply is not None
        board.push(reply)
        line.append(reply)
        if board.is_game_over(claim_draw=False):
            return None  # the defence ended the game: the mate was misjudged
        ranked = _top_two(engine, board, settings.nodes)
    return None  # no mate within max_mate solver moves


def _unique_line(
    engine: chess.engine.SimpleEngine,
    board: chess.Board,
    first: list[_Ranked],
    settings: PuzzleSettings,
) -> list[chess.Move]:
    """Solver moves (with the engine's replies between them) that each stand out; empty if
    the first does not."""
    line: list[chess.Move] = []
    ranked = first
    while _stands_out(board, ranked, settings):
        board.push(ranked[0].move)
        line.append(ranked[0].move)
        if len(line) // 2 + 1 >= settings.max_unique_moves or board.is_game_over(claim_draw=False):
            break
        reply = search(engine, board, settings.nodes).best
        assert reply is not None
        board.push(reply)
        line.append(reply)
        if board.is_game_over(claim_draw=False):
            break
        ranked = _top_two(engine, board, settings.nodes)
    if len(line) % 2 == 0:
        line = line[:-1]  # a reply stays only if a solver move follows it
    return line


def _stands_out(board: chess.Board, ranked: list[_Ranked], settings: PuzzleSettings) -> bool:
    """Whether the best move is a puzzle answer: it mates at once (any mate counts), or it
    wins (``min_win``) by ``margin`` over the second; an only move never is."""
    if len(ranked) < 2:
        return False
    best = ranked[0]
    if _mates_now(board, best.move):
        return True
    return best.win >= settings.min_win and best.win - ranked[1].win >= settings.margin


def find_puzzle(
    engine: chess.engine.SimpleEngine, source: Source, settings: PuzzleSettings | None = None
) -> Puzzle | None:
    """The puzzle that starts from ``source`` (its move played, the other side to solve), or
    None when the position is neither a short forced mate nor has a clearly best move."""
    settings = settings or PuzzleSettings()
    before = _board(source.fen, f"source {source.url or source.fen}")
    try:
        opponent = before.parse_uci(source.move)
    except ValueError:
        raise DlmUserError(
            f"source {source.url or source.fen}: move {source.move!r} is not legal in "
            f"{source.fen}; give the move that was played from that position"
        ) from None
    board = before.copy(stack=False)
    board.push(opponent)
    if board.is_game_over(claim_draw=False) or board.legal_moves.count() < 2:
        return None
    first = _top_two(engine, board, settings.nodes)
    if not first:
        return None  # no line at all (a node limit too small to finish one iteration)
    best = first[0]
    line: list[chess.Move] | None = None
    if best.mate is not None and 0 < best.mate <= settings.max_mate:
        line = _mate_line(engine, board.copy(), first, settings)
    else:
        line = _unique_line(engine, board.copy(), first, settings) or None
    if not line:
        return None
    end = board.copy()
    for move in line:
        end.push(move)
    mate = end.is_checkmate()
    if not mate and settings.min_gain > 0:
        solver_before = 1.0 - search(engine, before, settings.nodes).win_prob
        if best.win - solver_before < settings.min_gain:
            return None  # the source move was no mistake: e.g. the recapture of an even trade
    n = (len(line) + 1) // 2
    fen = before.fen()
    moves = (opponent.uci(), *(m.uci() for m in line))
    return Puzzle(
        puzzle_id=_puzzle_id(fen, moves),
        fen=fen,
        moves=moves,
        rating=_rating(mate, n),
        themes=_themes(mate, n, best.win),
        game_url=source.url,
    )


@contextmanager
def _engine_for(
    engine: chess.engine.SimpleEngine | None, settings: PuzzleSettings
) -> Iterator[chess.engine.SimpleEngine]:
    if engine is not None:
        yield engine
        return
    with open_engine(EngineSettings(nodes=settings.nodes, hash_mb=settings.hash_mb)) as own:
        yield own


def generate_puzzles(
    sources: Iterable[Source],
    settings: PuzzleSettings | None = None,
    *,
    engine: chess.engine.SimpleEngine | None = None,
    max_puzzles: int | None = None,
    progress: Progress | None = None,
) -> list[Puzzle]:
    """The puzzles found from ``sources``, in source order, each kept once (by id).

    ``engine``: an open Stockfish to use (None: one is opened with ``Threads=1`` and closed);
    ``max_puzzles``: stop once this many are found; ``progress`` (None: nothing) is told of
    each source as it is examined."""
    settings = settings or PuzzleSettings()
    if max_puzzles is not None and (
        isinstance(max_puzzles, bool) or not isinstance(max_puzzles, int) or max_puzzles < 0
    ):
        raise DlmUserError(f"max_puzzles must be a whole number >= 0 or None; got {max_puzzles!r}")
    found: dict[str, Puzzle] = {}
    if max_puzzles == 0:
        return []
    with _engine_for(engine, settings) as eng:
        for source in sources:
            puzzle = find_puzzle(eng, source, settings)
            if progress is not None:
                progress(1)
            if puzzle is not None:
                found.setdefault(puzzle.puzzle_id, puzzle)
                if max_puzzles is not None and len(found) >= max_puzzles:
                    break
    return list(found.values())


# ---------------------------------------------------------------------------------------------
# CSV


def _row(puzzle: Puzzle) -> list[str]:
    return [
        puzzle.puzzle_id,
        puzzle.fen,
        " ".join(puzzle.moves),
        str(puzzle.rating),
        str(puzzle.rating_deviation),
        str(puzzle.popularity),
        str(puzzle.nb_plays),
        " ".join(puzzle.themes),
        puzzle.game_url,
        " ".join(puzzle.opening_tags),
    ]


def write_puzzles(path: str | Path, puzzles: Iterable[Puzzle]) -> Path:
    """Write ``puzzles`` as Lichess puzzle CSV (with its header), atomically."""
    path = check_output_path(path, option="puzzle file")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for puzzle in puzzles:
        writer.writerow(_row(puzzle))
    atomic_write_text(path, buffer.getvalue())
    return path


def read_puzzles(path: str | Path) -> list[Puzzle]:
    """The puzzles of a Lichess puzzle CSV (header line required); every move is checked."""
    path = Path(path).expanduser()
    if path.suffix in {".zst", ".bz2", ".gz", ".xz", ".zip"}:
        raise DlmUserError(f"puzzle file {path} is compressed; decompress it to a .csv first")
    if not path.is_file():
        raise DlmUserError(f"puzzle file {path} does not exist or is not a file; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DlmUserError(f"puzzle file {path} is not UTF-8 text; give a CSV file") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise DlmUserError(
            f"puzzle file {path} is empty; it needs the header line {','.join(COLUMNS)}"
        )
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise DlmUserError(
            f"puzzle file {path} lacks column(s) {', '.join(missing)}; its first line must be "
            f"the header {','.join(COLUMNS)}"
        )
    index = {name: header.index(name) for name in COLUMNS if name in header}
    puzzles = []
    for fields in reader:
        if not fields:
            continue
        line = reader.line_num
        if len(fields) != len(header):
            raise DlmUserError(
                f"puzzle file {path} line {line}: {len(fields)} fields where the header has "
                f"{len(header)}; fix that row"
            )
        puzzles.append(_parse_row(path, line, {name: fields[i] for name, i in index.items()}))
    return puzzles


def _parse_row(path: Path, line: int, row: dict[str, str]) -> Puzzle:
    where = f"puzzle file {path} line {line} (puzzle {row['PuzzleId'] or '?'})"
    board = _board(row["FEN"], where)
    moves = row["Moves"].split()
    if len(moves) < 2 or len(moves) % 2:
        raise DlmUserError(
            f"{where}: Moves has {len(moves)} move(s); it needs the opponent's move then the "
            "solution, ending on a solver move (an even count, at least 2)"
        )
    normal = []
    for k, uci in enumerate(moves, start=1):
        try:
            move = board.parse_uci(uci)
        except ValueError:
            raise DlmUserError(
                f"{where}: move {k} {uci!r} of Moves is not legal in {board.fen()}; fix the row"
            ) from None
        normal.append(move.uci())
        board.push(move)

    def number(name: str) -> int:
        value = row.get(name, "") or "0"
        try:
            return int(value)
        except ValueError:
            raise DlmUserError(f"{where}: {name} {value!r} is not a whole number; fix it") from None

    if not row["Rating"].strip():
        raise DlmUserError(f"{where}: Rating is empty; give a whole number")
    return Puzzle(
        puzzle_id=row["PuzzleId"],
        fen=row["FEN"],
        moves=tuple(normal),
        rating=number("Rating"),
        rating_deviation=number("RatingDeviation"),
        popularity=number("Popularity"),
        nb_plays=number("NbPlays"),
        themes=tuple(row.get("Themes", "").split()),
        game_url=row.get("GameUrl", ""),
        opening_tags=tuple(row.get("OpeningTags", "").split()),
    )


# ---------------------------------------------------------------------------------------------
# Scoring


def solve(player: Player, puzzle: Puzzle) -> bool:
    """Whether ``player`` solves ``puzzle`` under the searchless-chess rule (module docstring)."""
    board = puzzle.start()
    for k, uci in enumerate(puzzle.moves[1:]):
        expected = chess.Move.from_uci(uci)
        if k % 2 == 1:  # the opponent's reply, from the line
            board.push(expected)
            continue
        move = player.choose(board.copy()).move
        if move not in board.legal_moves:
            return False
        board.push(move)
        if board.is_checkmate():
            return True
        if move != expected:
            return False
    return True


@dataclass(frozen=True)
class PuzzleResults:
    """Which puzzles each player solved, and accuracy per level."""

    players: tuple[str, ...]
    levels: tuple[str, ...]  # in ``level_order``
    puzzle_levels: tuple[str, ...]  # each puzzle's level, in the order given
    outcomes: dict[str, tuple[bool, ...]] = field(default_factory=dict)  # per player

    def count(self, level: str | None = None) -> int:
        """Puzzles at ``level`` (None: all)."""
        return sum(1 for lv in self.puzzle_levels if level is None or lv == level)

    def solved(self, player: str, level: str | None = None) -> int:
        return sum(
            ok
            for ok, lv in zip(self.outcomes[player], self.puzzle_levels)
            if level is None or lv == level
        )

    def accuracy(self, player: str, level: str | None = None) -> float:
        """Fraction solved at ``level`` (None: all); NaN when there are no such puzzles."""
        n = self.count(level)
        return self.solved(player, level) / n if n else float("nan")

    def table(self) -> dict[str, dict[str, float]]:
        """player -> level (and ``"all"``) -> accuracy."""
        return {
            p: {**{lv: self.accuracy(p, lv) for lv in self.levels}, "all": self.accuracy(p)}
            for p in self.players
        }


def evaluate_puzzles(
    players: Sequence[Player],
    puzzles: Sequence[Puzzle],
    *,
    level: Callable[[Puzzle], str] = puzzle_level,
    progress: Progress | None = None,
) -> PuzzleResults:
    """Every player on every puzzle; ``level`` groups the puzzles (default ``puzzle_level``),
    ``progress`` (None: nothing) is told of each puzzle a player finishes."""
    names = [p.name for p in players]
    if len(set(names)) != len(names):
        raise DlmUserError(f"players need distinct names to be told apart; got {names}")
    puzzle_levels = tuple(level(p) for p in puzzles)
    outcomes = {}
    for player in players:
        results = []
        for puzzle in puzzles:
            results.append(solve(player, puzzle))
            if progress is not None:
                progress(1)
        outcomes[player.name] = tuple(results)
    return PuzzleResults(
        players=tuple(names),
        levels=tuple(sorted(set(puzzle_levels), key=level_order)),
        puzzle_levels=puzzle_levels,
        outcomes=outcomes,
    )


def format_table(results: PuzzleResults) -> str:
    """Accuracy (%) per player (rows) and level (columns, with the puzzle count under each)."""
    columns = [*results.levels, "all"]
    header = ["player", *columns]
    counts = ["puzzles", *(str(results.count(lv)) for lv in results.levels), str(results.count())]
    rows = [
        [p, *(f"{100 * results.accuracy(p, lv):.1f}" for lv in [*results.levels, None])]
        for p in results.players
    ]
    table = [header, counts, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in table
    ]
    lines.insert(2, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
