"""The terminal game and the pieces a web page reuses: move parsing, the board, the predicted line,
the game session and the scripted terminal loop against a deterministic player."""

from __future__ import annotations

import io

import chess
import chess.pgn
import pytest

from dlm.chess.play import (
    AmbiguousMove,
    GameError,
    GameSession,
    IllegalMove,
    MalformedMove,
    describe_line,
    legal_moves_san,
    parse_move,
    play_terminal,
    render_board,
)
from dlm.chess.player import Decision, Player
from dlm.errors import DlmUserError


class ScriptedPlayer:
    """Plays a fixed reply for each ply number and predicts the given continuation (SAN)."""

    def __init__(self, replies: dict[int, tuple[str, tuple[str, ...]]], name: str = "scripted"):
        self.name = name
        self.replies = replies
        self.calls = 0

    def choose(self, board: chess.Board) -> Decision:
        self.calls += 1
        san, line_san = self.replies[len(board.move_stack)]
        move = board.parse_san(san)
        after = board.copy()
        after.push(move)
        line = []
        for predicted in line_san:
            line.append(after.push_san(predicted))
        return Decision(move, line=tuple(line))


def test_scripted_player_is_a_player():
    assert isinstance(ScriptedPlayer({}), Player)


# -- parse_move --------------------------------------------------------------------------------


def test_parse_move_reads_san_and_uci():
    board = chess.Board()
    for text in ("e4", "e2e4", "e4+", " e4 ", "1. e4", "e2-e4", "e4!"):
        assert parse_move(board, text) == chess.Move.from_uci("e2e4"), text
    assert parse_move(board, "Nf3") == chess.Move.from_uci("g1f3")
    assert parse_move(board, "nf3") == chess.Move.from_uci("g1f3")
    assert parse_move(board, "g1f3") == chess.Move.from_uci("g1f3")
    board.push_san("e4")
    board.push_san("d5")
    assert parse_move(board, "exd5") == chess.Move.from_uci("e4d5")
    assert parse_move(board, "e4d5") == chess.Move.from_uci("e4d5")


def test_parse_move_reads_castling_and_promotion():
    board = chess.Board("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1")
    for text in ("O-O", "0-0", "o-o", "e1g1", "e1h1"):
        assert parse_move(board, text) == chess.Move.from_uci("e1g1"), text
    for text in ("O-O-O", "0-0-0", "e1c1"):
        assert parse_move(board, text) == chess.Move.from_uci("e1c1"), text
    board = chess.Board("8/4P3/8/8/8/8/k7/7K w - - 0 1")
    queen = chess.Move.from_uci("e7e8q")
    for text in ("e8=Q", "e8Q", "e8=Q+", "e7e8q", "E7E8Q"):
        assert parse_move(board, text) == queen, text
    assert parse_move(board, "e8=N") == chess.Move.from_uci("e7e8n")
    with pytest.raises(IllegalMove, match="promotes a pawn.*e8=Q"):
        parse_move(board, "e8")
    with pytest.raises(IllegalMove, match="promotes a pawn.*e7e8q"):
        parse_move(board, "e7e8")


def test_parse_move_tells_malformed_illegal_and_ambiguous_apart():
    board = chess.Board()
    with pytest.raises(MalformedMove) as malformed:
        parse_move(board, "zz9")
    assert str(malformed.value) == "'zz9' is not a move: write SAN like Nf3 or UCI like g1f3"
    with pytest.raises(MalformedMove, match="no move given"):
        parse_move(board, "   ")
    with pytest.raises(IllegalMove) as illegal:
        parse_move(board, "Nf6")
    message = str(illegal.value)
    assert message.startswith("Nf6 is not legal here: the legal moves are ")
    assert "Nf3" in message and "e4" in message and "\n" not in message
    with pytest.raises(IllegalMove, match="e2e5 is not legal here"):
        parse_move(board, "e2e5")
    for null in ("--", "0000", "Z0", "@@@@"):  # a pass is no move in a game
        with pytest.raises(IllegalMove, match="is not legal here"):
            parse_move(board, null)
    board = chess.Board("4k3/8/8/8/8/5N2/8/1N2K3 w - - 0 1")
    with pytest.raises(AmbiguousMove) as ambiguous:
        parse_move(board, "Nd2")
    assert str(ambiguous.value) == "Nd2 is ambiguous here: say which knight, Nbd2 or Nfd2"
    assert parse_move(board, "Nbd2") == chess.Move.from_uci("b1d2")
    for cls in (MalformedMove, IllegalMove, AmbiguousMove, GameError):
        assert issubclass(cls, DlmUserError)


def test_illegal_move_message_is_truncated_and_mentions_check():
    board = chess.Board("k7/8/8/3Q4/8/8/8/R3K2R w KQ - 0 1")
    with pytest.raises(IllegalMove, match=r"and \d+ more$"):
        parse_move(board, "Kd3")
    board = chess.Board("4k3/8/8/8/8/8/4r3/4K3 w - - 0 1")
    with pytest.raises(IllegalMove, match=r"not legal here \(you are in check\)"):
        parse_move(board, "Kf2")  # the rook on e2 guards f2
    assert legal_moves_san(board) == ["Kd1", "Kf1", "Kxe2"]


# -- describe_line and render_board ------------------------------------------------------------


def test_describe_line_numbers_the_moves_and_stops_where_the_line_turns_illegal():
    board = chess.Board()
    e4 = chess.Move.from_uci("e2e4")
    assert describe_line(board, Decision(e4)) == ""
    line = tuple(chess.Move.from_uci(u) for u in ("e7e5", "g1f3", "b8c6", "f1b5"))
    assert describe_line(board, Decision(e4, line=line)) == "expects: 1... e5 2. Nf3 Nc6 3. Bb5"
    broken = tuple(chess.Move.from_uci(u) for u in ("e7e5", "g1f3", "g1f3", "b8c6"))
    text = describe_line(board, Decision(e4, line=broken))
    assert text == "expects: 1... e5 2. Nf3, then g1f3 (illegal)"
    assert "Nc6" not in text
    first_illegal = (chess.Move.from_uci("e2e4"),)
    assert describe_line(board, Decision(e4, line=first_illegal)) == "expects: e2e4 (illegal)"
    board.push(e4)  # Black's move: the line starts with White's second move
    e5 = chess.Move.from_uci("e7e5")
    line = (chess.Move.from_uci("g1f3"), chess.Move.from_uci("b8c6"))
    assert describe_line(board, Decision(e5, line=line)) == "expects: 2. Nf3 Nc6"


def test_render_board_labels_and_flips():
    board = chess.Board()
    white = render_board(board).splitlines()
    assert white[0].split() == list("abcdefgh")
    assert white[1].startswith(" 8 ") and white[1].endswith(" 8") and "♜" in white[1]
    assert white[8].startswith(" 1 ") and "♔" in white[8]
    black = render_board(board, perspective=chess.BLACK).splitlines()
    assert black[0].split() == list("hgfedcba")
    assert black[1].startswith(" 1 ") and "♔" in black[1]
    assert black[8].startswith(" 8 ")
    move = chess.Move.from_uci("e2e4")
    board.push(move)
    ascii_rows = render_board(board, unicode=False, last_move=move).splitlines()
    assert ascii_rows[5] == " 4  .  .  .  . [P] .  .  .  4"
    assert ascii_rows[7] == " 2  P  P  P  P [.] P  P  P  2"
    assert len({len(row) for row in ascii_rows[1:9]}) == 1


# -- GameSession -------------------------------------------------------------------------------


def test_session_turns_undo_and_errors():
    player = ScriptedPlayer({0: ("e4", ()), 2: ("Nf3", ())})
    session = GameSession(player, chess.BLACK)
    with pytest.raises(GameError, match="scripted's turn"):
        session.human_move("e5")
    with pytest.raises(GameError, match="nothing to undo"):
        session.undo()
    session.engine_move()
    with pytest.raises(GameError, match="nothing to undo"):
        session.undo()
    with pytest.raises(GameError, match="your turn"):
        session.engine_move()
    session.human_move("e5")
    with pytest.raises(GameError, match="scripted's turn"):
        session.human_move("d6")
    assert session.board.fen().split()[0] == "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR"
    taken = session.undo()  # the engine has not replied: only the human's move goes
    assert [p.san for p in taken] == ["e5"] and session.humans_turn
    session.human_move("e5")
    session.engine_move()
    taken = session.undo()
    assert [p.san for p in taken] == ["e5", "Nf3"]
    assert len(session.board.move_stack) == 1 and session.humans_turn
    assert session.result == "*" and not session.is_over


def test_session_checkmate_resign_and_pgn_comments():
    player = ScriptedPlayer({1: ("e5", ("g4", "Qh4#")), 3: ("Qh4#", ())})
    session = GameSession(player, chess.WHITE, human_name="Ann")
    session.human_move("f3")
    session.engine_move()
    session.human_move("g4")
    decision = session.engine_move()
    assert decision.move == chess.Move.from_uci("d8h4")
    assert session.is_over and session.result == "0-1" and session.termination == "checkmate"
    assert session.summary() == "0-1: Black wins by checkmate"
    with pytest.raises(GameError, match="the game is over"):
        session.human_move("e4")
    with pytest.raises(GameError, match="the game is over"):
        session.resign()
    game = chess.pgn.read_game(io.StringIO(session.pgn({"Event": "test"})))
    assert game.headers["White"] == "Ann" and game.headers["Black"] == "scripted"
    assert game.headers["Result"] == "0-1" and game.headers["Event"] == "test"
    nodes = list(game.mainline())
    assert nodes[1].comment == "expects: 2. g4 Qh4#"
    assert "Black wins by checkmate" in nodes[-1].comment
    session.undo()  # a checkmate can be taken back
    assert not session.is_over and len(session.board.move_stack) == 2
    session.resign()
    assert session.result == "0-1" and session.termination == "White resigned"
    with pytest.raises(GameError, match="you resigned"):
        session.undo()


# -- the terminal loop -------------------------------------------------------------------------


def test_play_terminal_scripted_fools_mate(tmp_path):
    player = ScriptedPlayer({1: ("e5", ("g4", "Qh4#")), 3: ("Qh4#", ())})
    typed = "zz9\nNf6\nhelp\nf3\nundo\nundo\nmoves\nf2f3\n\ng4\n"
    out = io.StringIO()
    pgn_path = tmp_path / "games" / "fool.pgn"
    result = play_terminal(
        player,
        human_color=chess.WHITE,
        input_stream=io.StringIO(typed),
        output_stream=out,
        pgn_path=pgn_path,
    )
    text = out.getvalue()
    assert result == "0-1"
    assert "'zz9' is not a move: write SAN like Nf3 or UCI like g1f3" in text
    assert "Nf6 is not legal here: the legal moves are " in text
    assert "scripted plays 1... e5" in text
    assert "  expects: 2. g4 Qh4#" in text
    assert "Took back 1. f3 e5" in text
    assert "nothing to undo: you have not moved yet" in text
    assert "Legal moves: Na3, Nc3, Nf3, Nh3, a3" in text
    assert "scripted plays 2... Qh4#" in text
    assert "Result 0-1: Black wins by checkmate" in text
    assert f"Saved the game to {pgn_path}" in text
    assert "♛" in text
    game = chess.pgn.read_game(io.StringIO(pgn_path.read_text()))
    assert [m.uci() for m in game.mainline_moves()] == ["f2f3", "e7e5", "g2g4", "d8h4"]
    assert game.headers["Result"] == "0-1" and game.headers["Black"] == "scripted"
    assert game.headers["Termination"] == "checkmate"
    assert game.end().board().is_checkmate()
    assert player.calls == 3  # e5 twice (before and after the undo), then the mate


def test_play_terminal_human_black_resigns(tmp_path):
    player = ScriptedPlayer({0: ("e4", ("e5", "Nf3")), 2: ("Nf3", ())}, name="bot")
    out = io.StringIO()
    pgn_path = tmp_path / "resign.pgn"
    result = play_terminal(
        player,
        human_color=chess.BLACK,
        input_stream=io.StringIO("e7e5\nresign\n"),
        output_stream=out,
        pgn_path=pgn_path,
        unicode=False,
    )
    text = out.getvalue()
    assert result == "1-0"
    assert "bot plays 1. e4" in text and "  expects: 1... e5 2. Nf3" in text
    assert "Your move (Black, move 2)" in text
    assert "Result 1-0: Black resigned, White wins" in text
    last_board = text.split("Result")[0].strip().splitlines()[-9:]
    assert last_board[0].startswith(" 1 ")  # Black's view: rank 1 on top
    game = chess.pgn.read_game(io.StringIO(pgn_path.read_text()))
    assert [m.uci() for m in game.mainline_moves()] == ["e2e4", "e7e5", "g1f3"]
    assert game.headers["White"] == "bot" and game.headers["Black"] == "human"
    assert game.headers["Result"] == "1-0" and game.headers["Termination"] == "Black resigned"


def test_play_terminal_end_of_input_saves_an_unfinished_game(tmp_path):
    player = ScriptedPlayer({1: ("e5", ())})
    out = io.StringIO()
    pgn_path = tmp_path / "eof.pgn"
    result = play_terminal(
        player,
        human_color=chess.WHITE,
        input_stream=io.StringIO("e4\n"),
        output_stream=out,
        pgn_path=pgn_path,
    )
    assert result == "*"
    assert "End of input: the game is left unfinished." in out.getvalue()
    game = chess.pgn.read_game(io.StringIO(pgn_path.read_text()))
    assert [m.uci() for m in game.mainline_moves()] == ["e2e4", "e7e5"]
    assert game.headers["Result"] == "*" and game.headers["Termination"] == "unterminated"
    out = io.StringIO()
    assert play_terminal(player, input_stream=io.StringIO("quit\n"), output_stream=out) == "*"
    assert "the game is left unfinished" in out.getvalue()


def test_play_terminal_refuses_a_bad_pgn_path_before_playing(tmp_path):
    player = ScriptedPlayer({})
    with pytest.raises(DlmUserError, match="is a folder"):
        play_terminal(
            player, input_stream=io.StringIO(""), output_stream=io.StringIO(), pgn_path=tmp_path
        )
