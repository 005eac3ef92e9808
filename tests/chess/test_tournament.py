"""Games and tournaments: random games replay exactly and end legally, the adjudicator calls
overwhelming positions for the right side, round robins and gauntlets play every pairing with
both colours, illegal predictions are counted, and the PGN file reads back."""

from __future__ import annotations

import chess
import chess.engine
import chess.pgn
import pytest

from chess_helpers import needs_stockfish
from dlm.chess.player import Decision, RandomPlayer
from dlm.chess.tournament import (
    Adjudicator,
    GameRecord,
    GameStart,
    adjudicate,
    as_start,
    gauntlet,
    load_pgn_results,
    play_game,
    round_robin,
    save_pgn,
)
from dlm.errors import DlmUserError

RESULTS = {"1-0", "0-1", "1/2-1/2"}
RULES = {
    "checkmate",
    "stalemate",
    "insufficient material",
    "seventyfive moves",
    "fivefold repetition",
    "fifty moves",
    "threefold repetition",
}


class ScriptedPlayer:
    """Plays the given moves (UCI) in turn; flags every ``illegal_every``-th one as illegal."""

    def __init__(self, name: str, moves: list[str], illegal_every: int = 0) -> None:
        self.name = name
        self._moves = list(moves)
        self._calls = 0
        self._illegal_every = illegal_every

    def choose(self, board: chess.Board) -> Decision:
        self._calls += 1
        flagged = bool(self._illegal_every) and self._calls % self._illegal_every == 0
        return Decision(chess.Move.from_uci(self._moves.pop(0)), illegal_prediction=flagged)


class FlaggingRandom(RandomPlayer):
    """A random player whose every second choice claims its unrestricted pick was illegal."""

    def __init__(self, seed: int, name: str) -> None:
        super().__init__(seed, name)
        self.calls = 0

    def choose(self, board: chess.Board) -> Decision:
        self.calls += 1
        decision = super().choose(board)
        return Decision(
            decision.move, line=(decision.move,), illegal_prediction=self.calls % 2 == 0
        )


class DuckOpening:
    """Shaped like ``dlm.chess.openings.Opening``: a code, a name and ``board()``."""

    eco = "C20"
    name = "King's Pawn Game"

    def board(self) -> chess.Board:
        board = chess.Board()
        board.push_uci("e2e4")
        board.push_uci("e7e5")
        return board


def replay(record: GameRecord) -> chess.Board:
    """The record's final position, asserting every move was legal when played."""
    board = record.opening.board()
    for move in record.moves:
        assert move in board.legal_moves
        board.push(move)
    return board


def test_random_game_replays_exactly_and_ends_legally():
    start = GameStart.from_san("1. e4 e5 2. Nf3", name="test line")
    games = [
        play_game(RandomPlayer(1, "one"), RandomPlayer(2, "two"), start, max_plies=400)
        for _ in range(2)
    ]
    assert games[0].moves == games[1].moves
    assert games[0].result == games[1].result
    other = play_game(RandomPlayer(3, "one"), RandomPlayer(2, "two"), start, max_plies=400)
    assert other.moves != games[0].moves
    for record in (*games, other):
        board = replay(record)
        assert record.result in RESULTS
        if record.termination in RULES:
            assert board.outcome(claim_draw=True).result() == record.result
            if record.termination == "threefold repetition":
                assert board.is_repetition(3)
        else:
            assert (record.termination, record.result) == ("max plies", "1/2-1/2")
            assert len(record.moves) == 400
        assert record.opening.moves == tuple(
            chess.Move.from_uci(m) for m in ("e2e4", "e7e5", "g1f3")
        )


def test_max_plies_ends_in_a_draw():
    record = play_game(RandomPlayer(1, "a"), RandomPlayer(2, "b"), None, max_plies=5)
    assert (record.termination, record.result, len(record.moves)) == ("max plies", "1/2-1/2", 5)


def test_checkmate_ends_the_game():
    white = ScriptedPlayer("w", ["f2f3", "g2g4"])
    black = ScriptedPlayer("b", ["e7e5", "d8h4"])
    record = play_game(white, black, None)
    assert (record.result, record.termination) == ("0-1", "checkmate")
    assert len(record.moves) == 4


def test_draws_are_claimed_at_once():
    white = ScriptedPlayer("w", ["g1f3", "f3g1", "g1f3", "f3g1"])
    black = ScriptedPlayer("b", ["g8f6", "f6g8", "g8f6", "f6g8"])
    record = play_game(white, black, None)
    assert (record.result, record.termination, len(record.moves)) == (
        "1/2-1/2",
        "threefold repetition",
        8,
    )
    quiet = chess.Board("4k3/8/8/8/8/8/8/R3K3 w - - 99 80")
    record = play_game(ScriptedPlayer("w", ["a1a2"]), RandomPlayer(0, "b"), quiet)
    assert (record.result, record.termination) == ("1/2-1/2", "fifty moves")


def test_an_illegal_move_is_a_bug():
    with pytest.raises(RuntimeError, match="not a legal move"):
        play_game(ScriptedPlayer("w", ["e2e5"]), RandomPlayer(0, "b"), None)


def test_openings_in_every_form():
    moves = [chess.Move.from_uci("e2e4"), chess.Move.from_uci("e7e5")]
    board = chess.Board()
    for move in moves:
        board.push(move)
    duck = as_start(DuckOpening())
    assert (duck.name, duck.eco, duck.moves) == ("King's Pawn Game", "C20", tuple(moves))
    assert as_start(board).moves == as_start(moves).moves == tuple(moves)
    assert as_start(moves).name == "1. e4 e5"
    assert as_start(None).board() == chess.Board()
    with pytest.raises(DlmUserError, match="not a legal move"):
        GameStart.from_san("e4 e4")
    with pytest.raises(DlmUserError, match="not legal"):
        as_start([chess.Move.from_uci("e2e5")])
    mated = GameStart.from_san("f3 e5 g4 Qh4#")
    with pytest.raises(DlmUserError, match="already ends the game"):
        play_game(RandomPlayer(0, "a"), RandomPlayer(1, "b"), mated)
    with pytest.raises(DlmUserError, match="max_plies"):
        play_game(RandomPlayer(0, "a"), RandomPlayer(1, "b"), None, max_plies=0)


def test_adjudicate_rule():
    pov = chess.engine.PovScore
    cp, mate = chess.engine.Cp, chess.engine.Mate
    assert adjudicate(pov(cp(1300), chess.WHITE)) is None  # the threshold is strict
    assert adjudicate(pov(cp(-1300), chess.BLACK)) is None
    assert adjudicate(pov(cp(1301), chess.WHITE))[0] == chess.WHITE
    assert adjudicate(pov(cp(1301), chess.BLACK))[0] == chess.BLACK  # Black to move, Black ahead
    assert adjudicate(pov(cp(-1400), chess.BLACK))[0] == chess.WHITE
    assert adjudicate(pov(mate(3), chess.BLACK)) == (chess.BLACK, "mate in 3 for black")
    assert adjudicate(pov(mate(-2), chess.BLACK))[0] == chess.WHITE
    assert adjudicate(pov(cp(500), chess.WHITE), threshold_cp=400)[0] == chess.WHITE


@needs_stockfish
@pytest.mark.parametrize(
    ("fen", "result"),
    [
        # Two queens and a rook: Stockfish 15.1 at 200 nodes scores queen and rook against a
        # bare king only +10..+15 pawns, under the threshold, but this above +18 after any move.
        ("4k3/8/8/8/8/8/8/RQQ1K3 w - - 0 1", "1-0"),  # the strong side to move
        ("4k3/8/8/8/8/8/8/RQQ1K3 b - - 0 1", "1-0"),  # the bare king to move
        ("rqq1k3/8/8/8/8/8/8/4K3 w - - 0 1", "0-1"),  # Black has the material
    ],
)
def test_adjudication_calls_an_overwhelming_edge(fen, result):
    with Adjudicator(nodes=200) as adjudicator:
        record = play_game(
            RandomPlayer(0, "a"), RandomPlayer(1, "b"), chess.Board(fen), adjudicator=adjudicator
        )
    assert (record.termination, record.result, len(record.moves)) == ("adjudication", result, 1)
    assert record.detail.startswith("Stockfish (200 nodes): ")


@needs_stockfish
def test_adjudicator_leaves_an_even_position_alone():
    board = chess.Board()
    board.push_san("e4")
    with Adjudicator(nodes=200) as adjudicator:
        assert adjudicator.judge(board) is None
        mate_next = chess.Board("6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1")
        first = adjudicator.judge(mate_next)
        assert first == adjudicator.judge(mate_next)  # the same position, the same verdict
        assert first is not None and first[0] == chess.WHITE and "mate in 1" in first[1]


def test_round_robin_plays_every_pairing_with_both_colours():
    players = [FlaggingRandom(seed, f"r{seed}") for seed in range(3)]
    openings = [GameStart.from_san("e4", name="e4"), GameStart.from_san("d4", name="d4")]
    finished = []
    tournament = round_robin(players, openings, max_plies=6, progress=finished.append)
    assert len(tournament.records) == len(tournament.results) == 3 * 2 * 2
    assert finished == [1] * 12
    for opening in ("e4", "d4"):
        pairings = [(r.white, r.black) for r in tournament.records if r.opening.name == opening]
        assert sorted(pairings) == sorted(
            (a.name, b.name) for a in players for b in players if a is not b
        )
    assert [r.round_number for r in tournament.records] == list(range(1, 13))
    for player in players:
        assert tournament.decisions[player.name] == player.calls == 8 * 3  # 6 plies, 3 each
        assert tournament.illegal_predictions[player.name] == player.calls // 2
        assert tournament.illegal_rate(player.name) == pytest.approx(0.5)


def test_gauntlet_plays_only_against_anchors():
    players = [RandomPlayer(1, "p1"), RandomPlayer(2, "p2")]
    anchors = [RandomPlayer(3, "anchor")]
    tournament = gauntlet(players, anchors, [None, DuckOpening()], max_plies=4)
    assert len(tournament.records) == 2 * 1 * 2 * 2
    for record in tournament.records:
        assert "anchor" in (record.white, record.black)
    whites = [r.white for r in tournament.records]
    assert whites.count("anchor") == 4 and whites.count("p1") == 2 and whites.count("p2") == 2


def test_tournament_mistakes():
    with pytest.raises(DlmUserError, match="named 'x'"):
        round_robin([RandomPlayer(0, "x"), RandomPlayer(1, "x")], [None])
    with pytest.raises(DlmUserError, match="at least two"):
        round_robin([RandomPlayer(0, "x")], [None])
    with pytest.raises(DlmUserError, match="no openings"):
        round_robin([RandomPlayer(0, "x"), RandomPlayer(1, "y")], [])
    with pytest.raises(DlmUserError, match="named 'x'"):
        gauntlet([RandomPlayer(0, "x")], [RandomPlayer(1, "x")], [None])


def test_save_pgn_round_trips(tmp_path):
    players = [FlaggingRandom(1, "alpha"), RandomPlayer(2, "beta")]
    custom = chess.Board("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1")
    tournament = round_robin(players, [DuckOpening(), custom], max_plies=8)
    path = save_pgn(tournament.records, tmp_path / "out" / "games.pgn")
    with path.open(encoding="utf-8") as handle:
        read = [chess.pgn.read_game(handle) for _ in tournament.records]
        assert chess.pgn.read_game(handle) is None
    for record, game in zip(tournament.records, read):
        assert game is not None and not game.errors
        headers = game.headers
        assert (headers["White"], headers["Black"]) == (record.white, record.black)
        assert headers["Result"] == record.result
        assert headers["Termination"] == record.termination
        assert headers["Opening"] == record.opening.name
        assert int(headers["OpeningPlies"]) == len(record.opening.moves)
        assert list(game.mainline_moves()) == [*record.opening.moves, *record.moves]
        assert game.board().fen() == record.opening.fen
        assert game.end().board() == record.board()
    assert load_pgn_results(path) == tournament.results
    assert read[0].headers["ECO"] == "C20"
    assert "FEN" in read[2].headers  # the custom position
