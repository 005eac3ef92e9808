"""A person against a ``Player``: move parsing, board drawing, the game state and the terminal loop.

``dlm chess play --model DIR`` runs ``play_terminal``; a web page reuses the same pieces, so
everything that is not terminal I/O is a pure function or lives on ``GameSession``:

* ``parse_move(board, text)`` reads SAN (``Nf3``, ``O-O``, ``exd5``, ``e8=Q``, with or without
  ``+``/``#``) or UCI (``g1f3``, ``e7e8q``) and raises a ``BadMove`` whose one-line message says
  whether the text is not a move at all (``MalformedMove``), not legal here (``IllegalMove``,
  listing the legal moves) or ambiguous (``AmbiguousMove``, naming the ways to say it);
* ``render_board(board, perspective, unicode, last_move)`` draws the board as text with rank and
  file labels, from either side, the last move's squares in brackets;
* ``describe_line(board, decision)`` writes the future a player predicted after its move
  (DiffuSearch's imagined line) as numbered SAN, ``expects: 2. Nf3 Nc6 3. Bb5``, stopping
  where the prediction stops being legal;
* ``GameSession`` holds one game (board, who plays which colour, the plies with the engine's
  decisions) with ``human_move``, ``engine_move``, ``undo``, ``resign``, ``result`` and ``pgn``;
* ``play_terminal`` is the read-a-line, print-the-board loop around a ``GameSession``.

A bad move or command never ends the game: the loop prints the one-line message and asks again.
End of input (or ``quit``, or Ctrl-C) leaves the game unfinished (result ``*``); the PGN of the
game so far is still written, atomically, when a path is given.
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import chess
import chess.pgn

from dlm.atomic import atomic_write_text, check_output_path
from dlm.errors import DlmUserError

from .player import Decision, Player

__all__ = [
    "AmbiguousMove",
    "BadMove",
    "GameError",
    "GameSession",
    "IllegalMove",
    "MalformedMove",
    "Ply",
    "describe_line",
    "legal_moves_san",
    "numbered_san",
    "parse_move",
    "play_terminal",
    "render_board",
]

MOVE_HINT = "write SAN like Nf3 or UCI like g1f3"
MAX_LISTED_MOVES = 30  # how many legal moves an ``IllegalMove`` message lists

_UCI = re.compile(r"^[a-h][1-8][a-h][1-8][qrbn]?$")
_SAN_PARTS = re.compile(r"^([NBRQK])?([a-h])?([1-8])?[-x]?([a-h][1-8])(=?[NBRQnbrq])?$")
_MOVE_NUMBER = re.compile(r"^\d+\s*\.+\s*")
_PIECE_NAMES = {
    chess.PAWN: "pawn",
    chess.KNIGHT: "knight",
    chess.BISHOP: "bishop",
    chess.ROOK: "rook",
    chess.QUEEN: "queen",
    chess.KING: "king",
}
_TERMINATIONS = {
    chess.Termination.CHECKMATE: "checkmate",
    chess.Termination.STALEMATE: "stalemate",
    chess.Termination.INSUFFICIENT_MATERIAL: "insufficient material",
    chess.Termination.SEVENTYFIVE_MOVES: "the 75-move rule",
    chess.Termination.FIVEFOLD_REPETITION: "fivefold repetition",
    chess.Termination.FIFTY_MOVES: "the 50-move rule",
    chess.Termination.THREEFOLD_REPETITION: "threefold repetition",
}


class BadMove(DlmUserError):
    """A typed move that cannot be played; the message says why and what to type instead."""


class MalformedMove(BadMove):
    """Text that is not a move in SAN or UCI at all (``zz9``)."""


class IllegalMove(BadMove):
    """A well-formed move that is not legal in this position; the message lists the legal ones."""


class AmbiguousMove(BadMove):
    """SAN that fits more than one legal move (``Nd2`` with knights on b1 and f3)."""


class GameError(DlmUserError):
    """An action the game's state does not allow now (undo with nothing to undo, a move after
    the end, a move out of turn)."""


# ----------------------------------------------------------------------------------------------
# Pure functions: moves and text


def legal_moves_san(board: chess.Board) -> list[str]:
    """The legal moves in SAN, sorted (piece moves, then castling, then pawn moves)."""

    def key(san: str) -> tuple[int, str]:
        if san.startswith("O-O"):
            return (1, san)
        return (0 if san[0].isupper() else 2, san)

    return sorted((board.san(move) for move in board.legal_moves), key=key)


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 24 else text[:23] + "…"


def _illegal_message(board: chess.Board, shown: str) -> str:
    moves = legal_moves_san(board)
    if not moves:
        return f"{shown} is not legal here: there are no legal moves (the game is over)"
    where = "here (you are in check)" if board.is_check() else "here"
    listed = ", ".join(moves[:MAX_LISTED_MOVES])
    if len(moves) > MAX_LISTED_MOVES:
        listed += f" and {len(moves) - MAX_LISTED_MOVES} more"
    return f"{shown} is not legal {where}: the legal moves are {listed}"


def _missing_promotion(board: chess.Board, to_square: int, from_square: int | None) -> bool:
    return any(
        move.promotion is not None
        and move.to_square == to_square
        and (from_square is None or move.from_square == from_square)
        for move in board.legal_moves
    )


def _normalised(text: str) -> str:
    """``text`` without a leading move number, annotation marks, and with lower-case piece
    letters and castling written the way SAN spells them."""
    text = _MOVE_NUMBER.sub("", text.strip()).strip()
    text = text.rstrip("!?").strip()
    if re.fullmatch(r"[oO0]-[oO0](-[oO0])?[+#]?", text):
        return text.replace("o", "O").replace("0", "O")
    # n, r, q and k are never files, so a lower-case piece letter cannot be misread (b can be)
    if (
        len(text) >= 3
        and text[0] in "nrqk"
        and _SAN_PARTS.match(text[0].upper() + text[1:].rstrip("+#"))
    ):
        return text[0].upper() + text[1:]
    return text


def parse_move(board: chess.Board, text: str) -> chess.Move:
    """The legal move ``text`` names in ``board``, written in SAN or UCI.

    Raises ``MalformedMove`` when ``text`` is no move at all, ``IllegalMove`` when it is a move
    that is not legal here (listing the legal moves in SAN), ``AmbiguousMove`` when SAN fits more
    than one legal move (naming the ways to tell them apart); each with a one-line message.
    """
    if not text.strip():
        raise MalformedMove(f"no move given: {MOVE_HINT}")
    shown = _shown(text)
    move_text = _normalised(text)
    if _UCI.match(move_text.lower()):
        uci = move_text.lower()
        try:
            return board.parse_uci(uci)
        except chess.IllegalMoveError:
            from_square, to_square = chess.parse_square(uci[:2]), chess.parse_square(uci[2:4])
            if len(uci) == 4 and _missing_promotion(board, to_square, from_square):
                raise IllegalMove(
                    f"{shown} promotes a pawn: add the piece, e.g. {uci}q (or r, b, n)"
                ) from None
            raise IllegalMove(_illegal_message(board, shown)) from None
        except chess.InvalidMoveError:
            raise MalformedMove(f"'{shown}' is not a move: {MOVE_HINT}") from None
    try:
        move = board.parse_san(move_text)
        if not move:  # python-chess reads --, Z0, 0000 and @@@@ as a null move (a pass)
            raise chess.IllegalMoveError(move_text)
        return move
    except chess.AmbiguousMoveError:
        raise AmbiguousMove(_ambiguous_message(board, move_text, shown)) from None
    except chess.IllegalMoveError:
        parts = _SAN_PARTS.match(move_text.rstrip("+#"))
        if parts and parts.group(1) is None and parts.group(5) is None:
            to_square = chess.parse_square(parts.group(4))
            if _missing_promotion(board, to_square, None):
                name = move_text.rstrip("+#")
                raise IllegalMove(
                    f"{shown} promotes a pawn: add the piece, e.g. {name}=Q (or =R, =B, =N)"
                ) from None
        raise IllegalMove(_illegal_message(board, shown)) from None
    except chess.InvalidMoveError:
        raise MalformedMove(f"'{shown}' is not a move: {MOVE_HINT}") from None


def _ambiguous_message(board: chess.Board, move_text: str, shown: str) -> str:
    parts = _SAN_PARTS.match(move_text.rstrip("+#"))
    candidates: list[str] = []
    piece_name = "piece"
    if parts:
        piece_type = chess.PIECE_SYMBOLS.index(parts.group(1).lower()) if parts.group(1) else 1
        piece_name = _PIECE_NAMES[piece_type]
        to_square = chess.parse_square(parts.group(4))
        file_hint, rank_hint = parts.group(2), parts.group(3)
        for move in board.legal_moves:
            if move.to_square != to_square or board.piece_type_at(move.from_square) != piece_type:
                continue
            if file_hint and chess.square_file(move.from_square) != "abcdefgh".index(file_hint):
                continue
            if rank_hint and chess.square_rank(move.from_square) != int(rank_hint) - 1:
                continue
            candidates.append(board.san(move))
    if not candidates:
        return f"{shown} is ambiguous here: say which piece moves, e.g. Nbd2 or R1e2"
    return f"{shown} is ambiguous here: say which {piece_name}, {' or '.join(sorted(candidates))}"


def numbered_san(board: chess.Board, moves: Iterable[chess.Move]) -> tuple[str, int]:
    """``moves`` played from ``board`` as numbered SAN (``2. Nf3 Nc6 3. Bb5``, or ``2... Nc6``
    when the first is Black's), and how many of them were legal: it stops at the first move
    that is not legal in the position the earlier ones reach."""
    board = board.copy(stack=False)
    words: list[str] = []
    count = 0
    for move in moves:
        if not board.is_legal(move):
            break
        san = board.san(move)
        if board.turn == chess.WHITE:
            words.append(f"{board.fullmove_number}. {san}")
        elif not words:
            words.append(f"{board.fullmove_number}... {san}")
        else:
            words.append(san)
        board.push(move)
        count += 1
    return " ".join(words), count


def describe_line(board: chess.Board, decision: Decision) -> str:
    """The future ``decision`` predicts after its move, as ``expects: 2. Nf3 Nc6 3. Bb5``.

    ``board`` is the position the decision was made in (before ``decision.move``). Empty when
    the player predicts nothing. When the prediction stops being legal partway, the legal
    prefix is shown and the first illegal move is named in UCI: ``expects: 2. Nf3, then g1g3
    (illegal)``.
    """
    if not decision.line or not board.is_legal(decision.move):
        return ""
    after = board.copy(stack=False)
    after.push(decision.move)
    text, legal = numbered_san(after, decision.line)
    if legal < len(decision.line):
        illegal = f"{decision.line[legal].uci()} (illegal)"
        text = f"{text}, then {illegal}" if text else illegal
    return f"expects: {text}"


def render_board(
    board: chess.Board,
    perspective: chess.Color = chess.WHITE,
    unicode: bool = True,
    last_move: chess.Move | None = None,
) -> str:
    """``board`` as text: rank labels left and right, file labels above and below, seen from
    ``perspective`` (Black's view puts rank 1 on top and the h-file on the left). Pieces are
    unicode chess symbols (letters, upper case for White, when ``unicode`` is false); the
    squares of ``last_move`` are drawn in brackets."""
    ranks = range(7, -1, -1) if perspective == chess.WHITE else range(8)
    files = range(8) if perspective == chess.WHITE else range(7, -1, -1)
    marked = {last_move.from_square, last_move.to_square} if last_move else set()
    empty = "·" if unicode else "."
    labels = "   " + "".join(f" {chess.FILE_NAMES[f]} " for f in files)
    rows = [labels]
    for rank in ranks:
        cells = []
        for file in files:
            square = chess.square(file, rank)
            piece = board.piece_at(square)
            symbol = (
                empty if piece is None else (piece.unicode_symbol() if unicode else piece.symbol())
            )
            cells.append(f"[{symbol}]" if square in marked else f" {symbol} ")
        rows.append(f" {rank + 1} " + "".join(cells) + f" {rank + 1}")
    rows.append(labels)
    return "\n".join(row.rstrip() for row in rows)


def _colour_name(colour: chess.Color) -> str:
    return "White" if colour == chess.WHITE else "Black"


# ----------------------------------------------------------------------------------------------
# The game state


@dataclass(frozen=True)
class Ply:
    """One move of the game: who played it and, for the engine, the decision behind it."""

    move: chess.Move
    san: str
    numbered: str  # "1. e4" or "1... e5"
    by_human: bool
    decision: Decision | None = None
    expects: str = ""  # describe_line of the decision, "" for the human's moves


class GameSession:
    """One game between a person and a ``Player``: the state a terminal or a web page holds.

    ``board`` is the live position (do not push moves on it directly: use ``human_move`` and
    ``engine_move`` so ``plies`` keeps the engine's decisions in step). ``result`` is ``*``
    while the game goes on; claimable draws (threefold repetition, the 50-move rule) end it.
    """

    def __init__(
        self,
        player: Player,
        human_color: chess.Color = chess.WHITE,
        *,
        board: chess.Board | None = None,
        human_name: str = "human",
    ) -> None:
        self.player = player
        self.human_color = human_color
        self.human_name = human_name
        self.board = board.copy(stack=False) if board is not None else chess.Board()
        self.start = self.board.copy(stack=False)
        self.plies: list[Ply] = []
        self.resigned: chess.Color | None = None

    # -- state ---------------------------------------------------------------------------------

    @property
    def humans_turn(self) -> bool:
        return not self.is_over and self.board.turn == self.human_color

    @property
    def engines_turn(self) -> bool:
        return not self.is_over and self.board.turn != self.human_color

    @property
    def last_move(self) -> chess.Move | None:
        return self.plies[-1].move if self.plies else None

    @property
    def outcome(self) -> chess.Outcome | None:
        return self.board.outcome(claim_draw=True)

    @property
    def is_over(self) -> bool:
        return self.resigned is not None or self.outcome is not None

    @property
    def result(self) -> str:
        """``1-0``, ``0-1``, ``1/2-1/2``, or ``*`` while the game goes on (or was left)."""
        if self.resigned is not None:
            return "0-1" if self.resigned == chess.WHITE else "1-0"
        outcome = self.outcome
        return outcome.result() if outcome is not None else "*"

    @property
    def termination(self) -> str:
        """Why the game ended, in words (``checkmate``, ``White resigned``, ``stalemate``), or
        ``unterminated`` while it goes on."""
        if self.resigned is not None:
            return f"{_colour_name(self.resigned)} resigned"
        outcome = self.outcome
        if outcome is None:
            return "unterminated"
        return _TERMINATIONS.get(outcome.termination, outcome.termination.name.lower())

    def summary(self) -> str:
        """The result in words: ``0-1: Black wins by checkmate``, ``*: unfinished``."""
        result = self.result
        if result == "*":
            return "*: the game is unfinished"
        if result == "1/2-1/2":
            return f"1/2-1/2: a draw by {self.termination}"
        winner = _colour_name(chess.WHITE if result == "1-0" else chess.BLACK)
        if self.resigned is not None:
            return f"{result}: {self.termination}, {winner} wins"
        return f"{result}: {winner} wins by {self.termination}"

    def _refuse_if_over(self) -> None:
        if self.is_over:
            raise GameError(
                f"the game is over ({self.result}, {self.termination}); undo or start a new game"
            )

    # -- actions -------------------------------------------------------------------------------

    def _record(self, move: chess.Move, by_human: bool, decision: Decision | None) -> Ply:
        before = self.board.copy(stack=False)
        numbered, _ = numbered_san(before, [move])
        ply = Ply(
            move=move,
            san=before.san(move),
            numbered=numbered,
            by_human=by_human,
            decision=decision,
            expects=describe_line(before, decision) if decision is not None else "",
        )
        self.board.push(move)
        self.plies.append(ply)
        return ply

    def human_move(self, text: str) -> Ply:
        """Play the person's move ``text`` (SAN or UCI); ``BadMove`` or ``GameError`` if not."""
        self._refuse_if_over()
        if self.board.turn != self.human_color:
            raise GameError(f"it is {self.player.name}'s turn to move, not yours")
        return self._record(parse_move(self.board, text), True, None)

    def engine_move(self) -> Decision:
        """Ask the player for its move here and play it."""
        self._refuse_if_over()
        if self.board.turn == self.human_color:
            raise GameError(f"it is your turn to move, not {self.player.name}'s")
        decision = self.player.choose(self.board.copy())
        if not self.board.is_legal(decision.move):  # a broken Player, not a user mistake
            raise RuntimeError(
                f"{self.player.name} chose {decision.move.uci()}, which is not legal in "
                f"{self.board.fen()}"
            )
        self._record(decision.move, False, decision)
        return decision

    def undo(self) -> list[Ply]:
        """Take back moves up to and including the person's last one, so it is their turn
        again (normally their move and the engine's reply); the plies taken back, oldest first.
        """
        if self.resigned is not None:
            raise GameError("the game is over: you resigned, so there is nothing to undo")
        if not any(ply.by_human for ply in self.plies):
            raise GameError("nothing to undo: you have not moved yet")
        taken: list[Ply] = []
        while True:
            self.board.pop()
            ply = self.plies.pop()
            taken.append(ply)
            if ply.by_human:
                break
        return taken[::-1]

    def resign(self) -> None:
        """The person gives up; the engine wins."""
        self._refuse_if_over()
        self.resigned = self.human_color

    # -- records -------------------------------------------------------------------------------

    def names(self) -> tuple[str, str]:
        """(White's name, Black's name)."""
        if self.human_color == chess.WHITE:
            return self.human_name, self.player.name
        return self.player.name, self.human_name

    def pgn_game(self, headers: Mapping[str, str] | None = None) -> chess.pgn.Game:
        """The game as a ``chess.pgn.Game``: the engine's predicted lines are move comments."""
        game = chess.pgn.Game()
        white, black = self.names()
        game.headers["Event"] = "dlm chess play"
        game.headers["Site"] = "?"
        game.headers["Date"] = datetime.date.today().strftime("%Y.%m.%d")
        game.headers["Round"] = "-"
        game.headers["White"] = white
        game.headers["Black"] = black
        game.headers["Result"] = self.result
        game.headers["Termination"] = self.termination
        if self.start != chess.Board():
            game.setup(self.start)
        for key, value in (headers or {}).items():
            game.headers[key] = value
        node: chess.pgn.GameNode = game
        for ply in self.plies:
            node = node.add_variation(ply.move)
            notes = []
            if ply.expects:
                notes.append(ply.expects)
            if ply.decision is not None and ply.decision.illegal_prediction:
                notes.append("its first choice was illegal")
            node.comment = "; ".join(notes).replace("}", ")")
        if self.is_over:
            ending = self.summary()
            node.comment = f"{node.comment}; {ending}" if node.comment else ending
        return game

    def pgn(self, headers: Mapping[str, str] | None = None) -> str:
        """The game so far as PGN text (``headers`` add to or override the defaults)."""
        return str(self.pgn_game(headers)) + "\n"


# ----------------------------------------------------------------------------------------------
# The terminal loop

HELP = """\
Type your move in SAN (e4, Nf3, O-O, exd5, e8=Q) or UCI (e2e4, g1f3, e7e8q), or a command:
  moves   list the legal moves
  undo    take back your last move (and the reply to it)
  resign  give up the game
  quit    stop here, leaving the game unfinished
  help    show this"""


def play_terminal(
    player: Player,
    *,
    human_color: chess.Color = chess.WHITE,
    input_stream: TextIO | None = None,
    output_stream: TextIO | None = None,
    pgn_path: str | Path | None = None,
    unicode: bool = True,
    human_name: str = "human",
    headers: Mapping[str, str] | None = None,
    board: chess.Board | None = None,
) -> str:
    """Play one game on a terminal against ``player``; the result (``1-0``, ``0-1``,
    ``1/2-1/2``, or ``*`` when the person quits or the input ends).

    Reads one line per move or command from ``input_stream`` (default stdin) and writes to
    ``output_stream`` (default stdout). A bad move prints its one-line message and asks again.
    The PGN goes to ``pgn_path`` (checked before the game starts, written atomically at the
    end, also when the game is left unfinished or an error stops it).
    """
    inp = input_stream if input_stream is not None else sys.stdin
    out = output_stream if output_stream is not None else sys.stdout
    path = check_output_path(pgn_path, "--pgn") if pgn_path is not None else None
    session = GameSession(player, human_color, board=board, human_name=human_name)

    def say(text: str = "") -> None:
        out.write(text + "\n")
        out.flush()

    def show_board() -> None:
        say(render_board(session.board, human_color, unicode, session.last_move))

    say(f"You play {_colour_name(human_color)} against {player.name}.")
    say(HELP)
    try:
        try:
            _loop(session, inp, out, say, show_board)
        except KeyboardInterrupt:
            say("\nInterrupted: the game is left unfinished.")
        say()
        show_board()
        say(f"Result {session.summary()}")
    finally:
        if path is not None:
            atomic_write_text(path, session.pgn(headers))
            say(f"Saved the game to {path}")
    return session.result


def _loop(
    session: GameSession,
    inp: TextIO,
    out: TextIO,
    say: Callable[[str], None],
    show_board: Callable[[], None],
) -> None:
    you = _colour_name(session.human_color)
    shown_at: int | None = None  # the ply count the board was last drawn at
    while not session.is_over:
        if session.engines_turn:
            session.engine_move()
            ply = session.plies[-1]
            say(f"{session.player.name} plays {ply.numbered}")
            if ply.expects:
                say(f"  {ply.expects}")
            continue
        if shown_at != len(session.plies):  # draw the board only when the position changed
            say()
            show_board()
            shown_at = len(session.plies)
        out.write(f"Your move ({you}, move {session.board.fullmove_number}): ")
        out.flush()
        line = inp.readline()
        if not line:
            say("\nEnd of input: the game is left unfinished.")
            return
        text = line.strip()
        command = text.lower()
        if not text:
            continue
        if command in ("quit", "exit", "q"):
            say("You stop here: the game is left unfinished.")
            return
        if command in ("help", "?", "h"):
            say(HELP)
        elif command in ("moves", "legal"):
            say("Legal moves: " + ", ".join(legal_moves_san(session.board)))
        elif command == "undo":
            try:
                taken = session.undo()
            except GameError as err:
                say(str(err))
            else:
                say("Took back " + numbered_san(session.board, [p.move for p in taken])[0])
                shown_at = None
        elif command == "resign":
            session.resign()
            say("You resign.")
        else:
            try:
                session.human_move(text)
            except DlmUserError as err:
                say(str(err))
