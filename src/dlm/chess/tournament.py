"""Games between players: one game, a round robin, a gauntlet against anchors, and PGN output.

This follows the tournament protocol of searchless-chess (Ruoss et al. 2024), which DiffuSearch
reports its Elo with: every pairing plays each opening twice, once with each colour, and a
game stops as soon as a quick Stockfish search calls it decided. Deliberate choices:

* **Openings.** A game starts from a ``GameStart``: a name, a starting FEN (normally the
  initial position) and moves played before the players take over. Anything with a ``name``
  and a ``board()`` (``dlm.chess.openings.Opening``, the shipped ECO lines), a ``chess.Board``
  (its root position and move stack) or a plain list of moves is accepted too. The opening's
  moves are part of the PGN; an ``OpeningPlies`` header says how many there are, and ``ECO``
  gives the opening's code when it has one.
* **Game over by the rules,** checked after every move: checkmate, stalemate and
  insufficient material end the game, and a draw by threefold repetition (the position has
  occurred three times) or by the 50-move rule is claimed at once on the players' behalf, as
  tournament managers do (so the 75-move and fivefold rules never come into play, though
  they are checked). We do not use python-chess's
  ``outcome(claim_draw=True)``, which also ends the game when the side to move merely *could*
  repeat a position with its next move (and tries every legal move to find out).
* **Adjudication.** With an ``Adjudicator``, after every move that does not end the game
  Stockfish searches the position; when it sees a mate (for either side) or an evaluation
  beyond ``threshold_cp`` = 1300 centipawns, the side it favours is declared the winner.
  searchless-chess searches for 10 ms; we search a fixed ``nodes`` = 2000 instead, from an
  empty hash with ``Threads=1``, so the verdict depends on the position alone and a game
  replays exactly on any machine (a call takes about 13 ms on one core of the machine this
  was written on, half of it the engine's reset between positions). The threshold is strict:
  exactly 1300 cp does not end the game. Stockfish 15.1 at small node counts scores queen and
  rook against a bare king at only +10..+15 pawns, so such games can run a few moves before
  the adjudicator (or a mate it finds) ends them.
* **A move limit.** After ``max_plies`` moves by the players (the opening not counted) the
  game is a draw with termination ``max plies``; ``None`` plays on until the rules end it.
* **Illegal moves are bugs.** A ``Player`` must return a legal move (``Decision.move``); one
  that does not raises ``RuntimeError``. How often a model's unrestricted first choice was
  illegal is what ``Decision.illegal_prediction`` reports, and it is counted per player.
* **Players see a copy** of the board (with its move stack, for repetition rules), so a
  player cannot disturb the game by pushing moves on it.
* **Termination** in a record and in the PGN ``Termination`` header is our reason in words
  (``checkmate``, ``stalemate``, ``insufficient material``, ``seventyfive moves``, ``fivefold
  repetition``, ``fifty moves``, ``threefold repetition``, ``adjudication``, ``max plies``),
  not only the PGN standard's ``normal``/``adjudication``; a ``TerminationDetail`` header
  says what the adjudicator saw. PGN dates are ``????.??.??`` so the same games give the same
  file. A player's move carries a comment with its predicted line (``Decision.line``, UCI)
  and ``illegal first choice`` when its unrestricted choice was illegal.
* **Order.** Games are played one after another: for each opening, for each pairing, the
  first player as White and then as Black. Players keep their state across games (a
  ``RandomPlayer``'s generator runs on), so the same players built the same way give the
  same tournament.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import chess
import chess.engine
import chess.pgn

from dlm.atomic import atomic_write_text, check_output_path
from dlm.errors import DlmUserError

from .engine import EngineSettings, open_engine
from .player import Player
from .ratings import GameResult

__all__ = [
    "Adjudicator",
    "GameRecord",
    "GameStart",
    "OpeningLike",
    "TournamentResult",
    "adjudicate",
    "as_start",
    "gauntlet",
    "load_pgn_results",
    "play_game",
    "round_robin",
    "save_pgn",
]

ADJUDICATION_CP = 1300
ADJUDICATION_NODES = 2000
DEFAULT_MAX_PLIES = 1000

Progress = Callable[[int], object]
_MOVE_NUMBER = re.compile(r"\b\d+\.+")


@runtime_checkable
class OpeningLike(Protocol):
    """Anything with a ``name`` and a ``board()`` (e.g. ``dlm.chess.openings.Opening``)."""

    name: str

    def board(self) -> chess.Board: ...


OpeningSpec = OpeningLike | chess.Board | Sequence[chess.Move] | None


@dataclass(frozen=True)
class GameStart:
    """Where a game starts: ``moves`` played from ``fen`` before the players take over."""

    name: str
    moves: tuple[chess.Move, ...] = ()
    fen: str = chess.STARTING_FEN
    eco: str = ""

    @classmethod
    def from_san(
        cls, san: str, name: str | None = None, fen: str = chess.STARTING_FEN, eco: str = ""
    ) -> GameStart:
        """A start from moves in SAN, e.g. ``"1. e4 e5 2. Nf3"`` (move numbers optional)."""
        board = _start_board(fen)
        moves = []
        for token in _MOVE_NUMBER.sub(" ", san).split():
            try:
                moves.append(board.push_san(token))
            except ValueError as err:
                raise DlmUserError(
                    f"opening {san!r}: {token!r} is not a legal move there; fix the opening"
                ) from err
        return cls(name or san, tuple(moves), fen, eco)

    def board(self) -> chess.Board:
        """The position the players start from (the opening's moves on the move stack)."""
        board = _start_board(self.fen)
        for move in self.moves:
            if move not in board.legal_moves:
                raise DlmUserError(
                    f"opening {self.name!r}: {move.uci()} is not legal in {board.fen()}; "
                    "fix the opening"
                )
            board.push(move)
        return board


def _start_board(fen: str) -> chess.Board:
    try:
        board = chess.Board(fen)
    except ValueError as err:
        raise DlmUserError(f"{fen!r} is not a FEN; give a valid starting position") from err
    if not board.is_valid():
        raise DlmUserError(f"{fen!r} is not a legal chess position; give a valid one")
    return board


def _from_board(board: chess.Board, name: str | None = None, eco: str = "") -> GameStart:
    root = board.root()
    moves = tuple(board.move_stack)
    if name is None:
        if moves:
            name = root.variation_san(moves)
        else:
            name = "start" if root.fen() == chess.STARTING_FEN else root.fen()
    return GameStart(name, moves, root.fen(), eco)


def as_start(opening: OpeningSpec) -> GameStart:
    """A ``GameStart`` from an opening (anything with ``name`` and ``board()``, such as
    ``dlm.chess.openings.Opening``), a ``chess.Board`` (its root and move stack), a list of
    ``chess.Move`` from the initial position, or ``None`` (the initial position)."""
    if isinstance(opening, GameStart):
        return opening
    if opening is None:
        return GameStart("start")
    if isinstance(opening, chess.Board):
        return _from_board(opening)
    if isinstance(opening, OpeningLike):
        try:
            board = opening.board()
        except ValueError as err:
            raise DlmUserError(f"opening {opening.name!r} is not legal ({err}); fix it") from err
        return _from_board(board, opening.name, str(getattr(opening, "eco", "") or ""))
    moves = tuple(opening)
    if not all(isinstance(m, chess.Move) for m in moves):
        raise DlmUserError(
            "an opening must be an Opening, a GameStart, a chess.Board or a list of chess.Move"
        )
    board = GameStart("moves", moves).board()
    return _from_board(board)


def adjudicate(
    score: chess.engine.PovScore, threshold_cp: int = ADJUDICATION_CP
) -> tuple[chess.Color, str] | None:
    """The winner and why, when ``score`` is a mate or beyond ``threshold_cp``; else ``None``."""
    white = score.white()
    mate = white.mate()
    if mate is not None:
        winner = chess.WHITE if white > chess.engine.Cp(0) else chess.BLACK
        return winner, f"mate in {abs(mate)} for {chess.COLOR_NAMES[winner]}"
    cp = white.score()
    assert cp is not None
    if abs(cp) > threshold_cp:
        winner = chess.WHITE if cp > 0 else chess.BLACK
        return winner, f"eval {cp:+d} cp from White's side"
    return None


class Adjudicator:
    """Stockfish calling games decided: a mate or more than ``threshold_cp`` centipawns.

    Each position is searched to ``nodes`` nodes from an empty hash with one thread, so a
    verdict depends on the position alone. A context manager (it owns an engine process).
    """

    def __init__(self, nodes: int = ADJUDICATION_NODES, threshold_cp: int = ADJUDICATION_CP):
        if isinstance(threshold_cp, bool) or not isinstance(threshold_cp, int) or threshold_cp < 1:
            raise DlmUserError(f"threshold_cp must be a whole number >= 1; got {threshold_cp!r}")
        self.settings = EngineSettings(nodes=nodes)
        self.nodes = nodes
        self.threshold_cp = threshold_cp
        self._context = open_engine(self.settings)
        self._engine = self._context.__enter__()

    def judge(self, board: chess.Board) -> tuple[chess.Color, str] | None:
        """The winner and why, if Stockfish calls ``board`` decided; else ``None``."""
        info = self._engine.analyse(board, chess.engine.Limit(nodes=self.nodes), game=object())
        verdict = adjudicate(info["score"], self.threshold_cp)
        if verdict is None:
            return None
        winner, why = verdict
        return winner, f"Stockfish ({self.nodes} nodes): {why}"

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def __enter__(self) -> Adjudicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class GameRecord:
    """One finished game: who played, from where, every move, and how it ended."""

    white: str
    black: str
    opening: GameStart
    moves: tuple[chess.Move, ...]  # the players' moves, after the opening
    result: str  # "1-0", "0-1" or "1/2-1/2"
    termination: str  # see the module docstring
    detail: str = ""  # what the adjudicator saw, when it ended the game
    lines: tuple[tuple[chess.Move, ...], ...] = ()  # each move's predicted continuation
    illegal: tuple[bool, ...] = ()  # each move: the player's unrestricted choice was illegal
    round_number: int | None = None

    @property
    def score(self) -> float:
        """White's score: 1, 0.5 or 0."""
        return {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}[self.result]

    def game_result(self) -> GameResult:
        return GameResult(self.white, self.black, self.score)

    def movers(self) -> list[chess.Color]:
        """Who played each of the players' moves."""
        first = self.opening.board().turn
        return [first if i % 2 == 0 else not first for i in range(len(self.moves))]

    def decisions(self, color: chess.Color) -> int:
        """How many moves ``color`` chose in this game."""
        return sum(mover == color for mover in self.movers())

    def illegal_predictions(self, color: chess.Color) -> int:
        """How many of ``color``'s unrestricted first choices were illegal."""
        return sum(bad and mover == color for mover, bad in zip(self.movers(), self.illegal))

    def board(self) -> chess.Board:
        """The final position, with the whole game on the move stack."""
        board = self.opening.board()
        for move in self.moves:
            board.push(move)
        return board

    def to_pgn(self) -> chess.pgn.Game:
        """The game as a ``chess.pgn.Game`` (opening moves included) with our headers."""
        start = self.opening.board()
        game = chess.pgn.Game.from_board(start)
        node: chess.pgn.GameNode = game.end()
        for i, move in enumerate(self.moves):
            node = node.add_main_variation(move)
            notes = []
            if i < len(self.lines) and self.lines[i]:
                notes.append("line " + " ".join(m.uci() for m in self.lines[i]))
            if i < len(self.illegal) and self.illegal[i]:
                notes.append("illegal first choice")
            node.comment = "; ".join(notes)
        headers = game.headers
        headers["Event"] = "dlm tournament"
        headers["Site"] = "?"
        headers["Date"] = "????.??.??"
        headers["Round"] = "?" if self.round_number is None else str(self.round_number)
        headers["White"] = self.white
        headers["Black"] = self.black
        headers["Result"] = self.result
        headers["Termination"] = self.termination
        if self.detail:
            headers["TerminationDetail"] = self.detail
        headers["Opening"] = self.opening.name
        if self.opening.eco:
            headers["ECO"] = self.opening.eco
        headers["OpeningPlies"] = str(len(self.opening.moves))
        return game


def _game_over(board: chess.Board) -> tuple[str, str] | None:
    """The result and termination if the rules end the game now (draws claimed at once)."""
    outcome = board.outcome(claim_draw=False)
    if outcome is not None:
        return outcome.result(), outcome.termination.name.lower().replace("_", " ")
    if board.halfmove_clock >= 100:
        return "1/2-1/2", "fifty moves"
    if board.is_repetition(3):
        return "1/2-1/2", "threefold repetition"
    return None


def play_game(
    white: Player,
    black: Player,
    opening: OpeningSpec = None,
    *,
    adjudicator: Adjudicator | None = None,
    max_plies: int | None = DEFAULT_MAX_PLIES,
    round_number: int | None = None,
) -> GameRecord:
    """Play one game from ``opening`` until the rules, the adjudicator or ``max_plies`` end it."""
    if max_plies is not None and (
        isinstance(max_plies, bool) or not isinstance(max_plies, int) or max_plies < 1
    ):
        raise DlmUserError(f"max_plies must be a whole number >= 1 or None; got {max_plies!r}")
    opening = as_start(opening)
    board = opening.board()
    if _game_over(board) is not None:
        raise DlmUserError(f"opening {opening.name!r} already ends the game; pick another")
    moves: list[chess.Move] = []
    lines: list[tuple[chess.Move, ...]] = []
    illegal: list[bool] = []
    detail = ""
    while True:
        player = white if board.turn == chess.WHITE else black
        decision = player.choose(board.copy())
        move = decision.move
        if not isinstance(move, chess.Move) or move not in board.legal_moves:
            raise RuntimeError(
                f"player {player.name!r} returned {move!r}, not a legal move in {board.fen()}"
            )
        board.push(move)
        moves.append(move)
        lines.append(tuple(decision.line))
        illegal.append(bool(decision.illegal_prediction))
        over = _game_over(board)
        if over is not None:
            result, termination = over
            break
        verdict = adjudicator.judge(board) if adjudicator is not None else None
        if verdict is not None:
            winner, detail = verdict
            result = "1-0" if winner == chess.WHITE else "0-1"
            termination = "adjudication"
            break
        if max_plies is not None and len(moves) >= max_plies:
            result, termination = "1/2-1/2", "max plies"
            break
    return GameRecord(
        white=white.name,
        black=black.name,
        opening=opening,
        moves=tuple(moves),
        result=result,
        termination=termination,
        detail=detail,
        lines=tuple(lines),
        illegal=tuple(illegal),
        round_number=round_number,
    )


@dataclass
class TournamentResult:
    """Every game of a tournament, the results to rate, and each player's illegal choices."""

    records: list[GameRecord] = field(default_factory=list)
    results: list[GameResult] = field(default_factory=list)
    illegal_predictions: dict[str, int] = field(default_factory=dict)  # per player
    decisions: dict[str, int] = field(default_factory=dict)  # moves chosen, per player

    def illegal_rate(self, name: str) -> float:
        """The share of ``name``'s moves whose unrestricted first choice was illegal."""
        return self.illegal_predictions[name] / max(self.decisions[name], 1)

    def add(self, record: GameRecord) -> None:
        self.records.append(record)
        self.results.append(record.game_result())
        for name, color in ((record.white, chess.WHITE), (record.black, chess.BLACK)):
            self.decisions[name] = self.decisions.get(name, 0) + record.decisions(color)
            self.illegal_predictions[name] = self.illegal_predictions.get(
                name, 0
            ) + record.illegal_predictions(color)


def _check_names(players: Iterable[Player]) -> None:
    seen: set[str] = set()
    for player in players:
        if player.name in seen:
            raise DlmUserError(
                f"two players are named {player.name!r}; give every player a different name"
            )
        seen.add(player.name)


def _openings(
    openings: Iterable[OpeningSpec],
) -> list[GameStart]:
    result = [as_start(o) for o in openings]
    if not result:
        raise DlmUserError("no openings given; give at least one (None is the initial position)")
    return result


def _play_pairings(
    pairings: list[tuple[Player, Player]],
    openings: list[GameStart],
    adjudicator: Adjudicator | None,
    max_plies: int | None,
    progress: Progress | None,
) -> TournamentResult:
    tournament = TournamentResult()
    for player in {p.name: p for pair in pairings for p in pair}.values():
        tournament.illegal_predictions[player.name] = 0
        tournament.decisions[player.name] = 0
    for opening in openings:
        for first, second in pairings:
            for white, black in ((first, second), (second, first)):
                record = play_game(
                    white,
                    black,
                    opening,
                    adjudicator=adjudicator,
                    max_plies=max_plies,
                    round_number=len(tournament.records) + 1,
                )
                tournament.add(record)
                if progress is not None:
                    progress(1)
    return tournament


def round_robin(
    players: Sequence[Player],
    openings: Iterable[OpeningSpec],
    *,
    adjudicator: Adjudicator | None = None,
    max_plies: int | None = DEFAULT_MAX_PLIES,
    progress: Progress | None = None,
) -> TournamentResult:
    """Every pair of ``players`` plays every opening twice, once with each colour."""
    players = list(players)
    if len(players) < 2:
        raise DlmUserError("a round robin needs at least two players")
    _check_names(players)
    pairings = [(a, b) for i, a in enumerate(players) for b in players[i + 1 :]]
    return _play_pairings(pairings, _openings(openings), adjudicator, max_plies, progress)


def gauntlet(
    players: Sequence[Player],
    anchors: Sequence[Player],
    openings: Iterable[OpeningSpec],
    *,
    adjudicator: Adjudicator | None = None,
    max_plies: int | None = DEFAULT_MAX_PLIES,
    progress: Progress | None = None,
) -> TournamentResult:
    """Every player plays every anchor on every opening twice, once with each colour
    (players do not meet each other, nor anchors each other)."""
    players, anchors = list(players), list(anchors)
    if not players or not anchors:
        raise DlmUserError("a gauntlet needs at least one player and one anchor")
    _check_names([*players, *anchors])
    pairings = [(p, a) for p in players for a in anchors]
    return _play_pairings(pairings, _openings(openings), adjudicator, max_plies, progress)


def save_pgn(records: Iterable[GameRecord], path: str | Path) -> Path:
    """Write every game to one PGN file at ``path``, atomically; returns the path."""
    path = check_output_path(path, "PGN file")
    games = [str(record.to_pgn()) for record in records]
    atomic_write_text(path, "\n\n".join(games) + "\n" if games else "")
    return path


def load_pgn_results(path: str | Path) -> list[GameResult]:
    """The results of every finished game in a PGN file (for ``fit_ratings``)."""
    path = Path(path)
    if not path.is_file():
        raise DlmUserError(f"{path} is not a file; give the PGN file a tournament wrote")
    scores = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}
    results = []
    with path.open(encoding="utf-8") as handle:
        while (headers := chess.pgn.read_headers(handle)) is not None:
            score = scores.get(headers.get("Result", "*"))
            if score is not None:
                results.append(GameResult(headers["White"], headers["Black"], score))
    return results
