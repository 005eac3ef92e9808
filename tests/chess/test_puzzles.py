"""``dlm.chess.puzzles``: the searchless-chess scoring rule on hand-made puzzles with scripted
players; generation with Stockfish from known positions (a mate in 1, a mate in 2, a queen
blunder, and positions that must be rejected), its determinism; the Lichess CSV round trip
and the errors a malformed file raises.

The Stockfish tests run at 10k nodes (a few searches per position, ~20 ms each) and are
skipped when no Stockfish is installed.
"""

from __future__ import annotations

from pathlib import Path

import chess
import pytest

from chess_helpers import needs_stockfish
from dlm.chess.player import Decision, StockfishPlayer
from dlm.chess.puzzles import (
    COLUMNS,
    Puzzle,
    PuzzleSettings,
    Source,
    evaluate_puzzles,
    format_table,
    generate_puzzles,
    level_order,
    puzzle_level,
    read_puzzles,
    solve,
    sources_from_game,
    sources_from_positions,
    sources_from_records,
    write_puzzles,
)
from dlm.errors import DlmUserError

NODES = 10_000

# 1.e4 e5 2.Bc4 Nc6 3.Qh5 Nf6?? 4.Qxf7#
SCHOLAR = ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"]
# Black wastes a move; Rd8+ Rxd8 Rxd8# (the only mate in 2).
BACK_RANK = Source("2r3k1/p4ppp/8/8/8/8/3R1PPP/3R2K1 b - - 0 1", "a7a6", "test/backrank#2")
# As BACK_RANK with the rooks doubled on two files: Rd8+ and Re8+ both mate in 2 (ambiguous).
TWO_MATES = Source("2r3k1/p4ppp/8/8/8/8/3RRPPP/3RR1K1 b - - 0 1", "a7a6", "test/two#2")
# ...Qxb1?? Rxb1 wins the queen: the one move that wins.
QUEEN_BLUNDER = Source(
    "rnb1kbnr/pp1pp1pp/1q3p2/8/8/2P2N2/P3PPPP/RNBQKB1R b KQkq - 0 6", "b6b1", "test/q#13"
)
# An even queen trade: bxc3 is the only good move, but Qxc3 was no mistake.
TRADE = Source("rn2kb1r/5ppp/2p1p3/p7/Pp2PPP1/1Pq1Q3/6BP/4K1NR w Kkq - 0 17", "e3c3", "test/t#34")
# 1.e4: nothing stands out for Black.
OPENING = sources_from_game(["e2e4"], url="test/opening")[0]


class Scripted:
    """Plays the given moves in turn (UCI) and records each board it is shown."""

    def __init__(self, moves: list[str], name: str = "scripted") -> None:
        self.name, self.moves, self.seen = name, list(moves), []

    def choose(self, board: chess.Board) -> Decision:
        self.seen.append(board.fen())
        return Decision(chess.Move.from_uci(self.moves.pop(0)))


class LinePlayer:
    """Plays each puzzle's solution (looked up by the board it is shown); on a board it does
    not know, the first legal move in UCI order."""

    def __init__(self, puzzles: list[Puzzle], name: str = "line") -> None:
        self.name = name
        self.answers: dict[str, str] = {}
        for p in puzzles:
            board = p.start()
            for k, uci in enumerate(p.moves[1:]):
                if k % 2 == 0:
                    self.answers[board.fen()] = uci
                board.push_uci(uci)

    def choose(self, board: chess.Board) -> Decision:
        if board.fen() in self.answers:
            return Decision(chess.Move.from_uci(self.answers[board.fen()]))
        return Decision(min(board.legal_moves, key=chess.Move.uci))


def _puzzle(fen: str, moves: str, themes: str = "", pid: str = "p") -> Puzzle:
    return Puzzle(pid, fen, tuple(moves.split()), 1000, themes=tuple(themes.split()))


SCHOLAR_PUZZLE = _puzzle(
    "r1bqkbnr/pppp1ppp/2n5/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3",
    "g8f6 h5f7",
    "mate mateIn1",
    "sch",
)
BACK_RANK_PUZZLE = _puzzle(BACK_RANK.fen, "a7a6 d2d8 c8d8 d1d8", "mate mateIn2", "br")
# Black wastes a move; Rd8# and Re8# both mate, the line has Rd8#.
TWO_ROOKS = _puzzle("6k1/5ppp/8/8/8/8/r4PPP/3RR1K1 b - - 0 1", "a2a3 d1d8", "mate mateIn1", "tr")
# A non-mate line of two solver moves (Black's): 1.e4 e5 2.Nf3 Nc6.
QUIET = _puzzle(chess.STARTING_FEN, "e2e4 e7e5 g1f3 b8c6", "advantage", "q")


# ---------------------------------------------------------------------------------------------
# Scoring


def test_the_line_solves_and_the_opponent_moves_first():
    player = Scripted(["h5f7"])
    assert solve(player, SCHOLAR_PUZZLE)
    after = chess.Board(SCHOLAR_PUZZLE.fen)
    after.push_uci("g8f6")
    assert player.seen == [after.fen()]  # the opponent's Nf6 was played before asking


def test_a_deviation_fails():
    assert not solve(Scripted(["h5e2"]), SCHOLAR_PUZZLE)
    assert not solve(Scripted(["d2d8", "d1d2"]), BACK_RANK_PUZZLE)  # right first, wrong second
    assert not solve(Scripted(["d7d5"]), QUIET)
    assert not solve(Scripted(["e7e5", "g8f6"]), QUIET)  # a deviation at the last move


def test_replies_come_from_the_line():
    player = Scripted(["d2d8", "d1d8"])
    assert solve(player, BACK_RANK_PUZZLE)
    board = BACK_RANK_PUZZLE.start()
    for uci in ("d2d8", "c8d8"):
        board.push_uci(uci)
    assert player.seen[1] == board.fen()
    assert solve(Scripted(["e7e5", "b8c6"]), QUIET)


def test_any_mating_move_counts():
    assert solve(Scripted(["e1e8"]), TWO_ROOKS)
    assert solve(Scripted(["d1d8"]), TWO_ROOKS)
    # A mate at a turn where the line expected something else also solves the puzzle.
    fen = "6k1/5ppp/8/8/8/8/r4PPP/3RR1K1 b - - 0 1"
    assert solve(Scripted(["d1d8"]), _puzzle(fen, "a2a3 g1f1 a3a4 d1d8"))


def test_an_illegal_move_fails():
    assert not solve(Scripted(["a1a8"]), SCHOLAR_PUZZLE)


def test_evaluate_and_table():
    puzzles = [SCHOLAR_PUZZLE, BACK_RANK_PUZZLE, TWO_ROOKS, QUIET]
    assert [puzzle_level(p) for p in puzzles] == ["mateIn1", "mateIn2", "mateIn1", "unique2"]
    line = LinePlayer(puzzles)
    first_only = LinePlayer([SCHOLAR_PUZZLE, TWO_ROOKS], name="mates-in-1")
    ticks = []
    results = evaluate_puzzles([line, first_only], puzzles, progress=ticks.append)
    assert sum(ticks) == 8
    assert results.levels == ("mateIn1", "mateIn2", "unique2")
    table = results.table()
    assert table["line"] == {"mateIn1": 1.0, "mateIn2": 1.0, "unique2": 1.0, "all": 1.0}
    assert table["mates-in-1"]["mateIn1"] == 1.0 and table["mates-in-1"]["all"] == 0.5
    text = format_table(results)
    assert "mateIn1" in text and "unique2" in text and "50.0" in text and "100.0" in text
    assert text.splitlines()[1].split() == ["puzzles", "2", "1", "1", "4"]


def test_evaluate_refuses_players_with_one_name():
    with pytest.raises(DlmUserError, match="distinct names"):
        evaluate_puzzles([Scripted([]), Scripted([])], [SCHOLAR_PUZZLE])


def test_level_order():
    levels = ["unique2", "other", "mateIn3", "unique1", "mateIn1", "mateIn10"]
    assert sorted(levels, key=level_order) == [
        "mateIn1", "mateIn3", "mateIn10", "unique1", "unique2", "other"
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Sources


def test_sources_from_game_positions_and_records_agree():
    by_moves = sources_from_game(SCHOLAR, url="g")
    board, fens = chess.Board(), [chess.STARTING_FEN]
    for uci in SCHOLAR:
        board.push_uci(uci)
        fens.append(board.fen())
    assert sources_from_positions(fens, url="g") == by_moves
    assert by_moves[-1] == Source(SCHOLAR_PUZZLE.fen, "g8f6", "g#6")
    records = [
        {"game": 3, "ply": k, "fen": s.fen, "played": s.move} for k, s in enumerate(by_moves)
    ]
    from_records = sources_from_records(records, name="sp")
    assert [(s.fen, s.move) for s in from_records] == [(s.fen, s.move) for s in by_moves]
    assert from_records[-1].url == "sp/game3#6"


def test_bad_sources():
    with pytest.raises(DlmUserError, match="move 2 'e2e4' is not legal"):
        sources_from_game(["e2e4", "e2e4"])
    with pytest.raises(DlmUserError, match="positions 0 and 1 are not one legal move apart"):
        sources_from_positions([chess.STARTING_FEN, SCHOLAR_PUZZLE.fen])
    with pytest.raises(DlmUserError, match="not a valid FEN"):
        sources_from_positions(["not a fen", chess.STARTING_FEN])
    with pytest.raises(DlmUserError, match="no 'played'"):
        sources_from_records([{"fen": chess.STARTING_FEN}])


def test_settings_are_checked():
    for bad in ({"nodes": 0}, {"margin": 0}, {"min_win": 1.5}, {"min_gain": -0.1}):
        with pytest.raises(DlmUserError, match="puzzle"):
            PuzzleSettings(**bad)


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_round_trip(tmp_path: Path):
    puzzles = [
        SCHOLAR_PUZZLE,
        Puzzle(
            "x1", BACK_RANK.fen, ("a7a6", "d2d8", "c8d8", "d1d8"), 1234, 75, 93, 1200,
            ("mate", "mateIn2", "short"), "https://lichess.org/abc#2", ("Italian_Game",),
        ),
    ]  # fmt: skip
    path = write_puzzles(tmp_path / "out" / "p.csv", puzzles)
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert read_puzzles(path) == puzzles
    assert not list(path.parent.glob(".*tmp"))  # no temporary left over


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = ",".join(COLUMNS)
GOOD = f"sch,{SCHOLAR_PUZZLE.fen},g8f6 h5f7,800,0,0,0,mate mateIn1,,"


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "is empty"),
        (["PuzzleId,FEN,Rating", "a,b,3"], "lacks column.*Moves"),
        ([HEADER, GOOD, GOOD.replace("h5f7", "h5f8")], r"line 3 \(puzzle sch\): move 2 'h5f8'"),
        ([HEADER, GOOD.replace("g8f6 h5f7", "g8f6")], r"line 2 .*1 move\(s\)"),
        ([HEADER, GOOD.replace(SCHOLAR_PUZZLE.fen, "8/8/8 w - - 0 1")], "line 2 .*not a valid"),
        ([HEADER, GOOD.replace(",800,", ",hard,")], "line 2 .*Rating 'hard'"),
        ([HEADER, GOOD + ",extra"], "line 2: 11 fields where the header has 10"),
    ],
)
def test_malformed_csv(tmp_path: Path, lines: list[str], message: str):
    with pytest.raises(DlmUserError, match=message):
        read_puzzles(_write(tmp_path, lines))


def test_unreadable_files(tmp_path: Path):
    with pytest.raises(DlmUserError, match="does not exist"):
        read_puzzles(tmp_path / "missing.csv")
    with pytest.raises(DlmUserError, match="compressed"):
        read_puzzles(tmp_path / "lichess_db_puzzle.csv.zst")
    with pytest.raises(DlmUserError, match="is a folder"):
        write_puzzles(tmp_path, [SCHOLAR_PUZZLE])


def test_minimal_columns_read(tmp_path: Path):
    path = _write(
        tmp_path, ["PuzzleId,FEN,Moves,Rating", f"sch,{SCHOLAR_PUZZLE.fen},g8f6 h5f7,800"]
    )
    (puzzle,) = read_puzzles(path)
    assert puzzle.moves == ("g8f6", "h5f7") and puzzle.themes == () and puzzle.nb_plays == 0
    assert puzzle.level == "mateIn1"  # from the line, not the (absent) themes


# ---------------------------------------------------------------------------------------------
# Generation (Stockfish)

SOURCES = [
    *sources_from_game(SCHOLAR, url="test/scholar"),
    BACK_RANK,
    TWO_MATES,
    QUEEN_BLUNDER,
    TRADE,
]


@pytest.fixture(scope="module")
def generated() -> list[Puzzle]:
    return generate_puzzles(SOURCES, PuzzleSettings(nodes=NODES))


def _ends_in_mate(puzzle: Puzzle) -> bool:
    board = chess.Board(puzzle.fen)
    for uci in puzzle.moves:
        board.push_uci(uci)
    return board.is_checkmate()


@needs_stockfish
def test_generation_finds_the_known_puzzles(generated: list[Puzzle]):
    by_url = {p.game_url: p for p in generated}
    assert set(by_url) == {"test/scholar#6", "test/backrank#2", "test/q#13"}
    mate1 = by_url["test/scholar#6"]
    assert mate1.fen == SCHOLAR_PUZZLE.fen and mate1.moves == ("g8f6", "h5f7")
    assert mate1.level == "mateIn1" and mate1.rating == 800 and "oneMove" in mate1.themes
    mate2 = by_url["test/backrank#2"]
    assert mate2.moves == ("a7a6", "d2d8", "c8d8", "d1d8") and mate2.level == "mateIn2"
    assert mate2.themes == ("mate", "mateIn2", "short") and mate2.rating == 1200
    assert _ends_in_mate(mate1) and _ends_in_mate(mate2)
    blunder = by_url["test/q#13"]
    assert blunder.moves == ("b6b1", "a1b1") and blunder.level == "unique1"
    assert blunder.themes == ("crushing", "oneMove") and not _ends_in_mate(blunder)


@needs_stockfish
def test_generation_rejects_unclear_positions():
    # The opening (nothing stands out), two equally fast mates (the line's first move would
    # not be the only answer) and an even trade (the recapture is forced, but Qxc3 was no
    # mistake; allowed once min_gain is 0).
    settings = PuzzleSettings(nodes=NODES)
    assert generate_puzzles([OPENING, TWO_MATES, TRADE], settings) == []
    (trade,) = generate_puzzles([TRADE], PuzzleSettings(nodes=NODES, min_gain=0))
    assert trade.moves == ("e3c3", "b4c3")


@needs_stockfish
def test_generation_is_deterministic(generated: list[Puzzle], tmp_path: Path):
    again = generate_puzzles(SOURCES, PuzzleSettings(nodes=NODES))
    write_puzzles(tmp_path / "a.csv", generated)
    write_puzzles(tmp_path / "b.csv", again)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    # Each puzzle depends on its source alone, not on what was searched before it.
    backwards = generate_puzzles(SOURCES[::-1], PuzzleSettings(nodes=NODES))
    assert backwards == generated[::-1]
    assert read_puzzles(tmp_path / "a.csv") == generated


@needs_stockfish
def test_max_puzzles_and_progress():
    ticks: list[int] = []
    found = generate_puzzles(
        [OPENING, *SOURCES], PuzzleSettings(nodes=NODES), max_puzzles=1, progress=ticks.append
    )
    assert [p.game_url for p in found] == ["test/scholar#6"]
    assert sum(ticks) == 1 + len(SCHOLAR)  # stopped at the first puzzle


@needs_stockfish
def test_stockfish_solves_the_mates_in_one(generated: list[Puzzle]):
    mates = [p for p in generated if p.level == "mateIn1"]
    assert mates
    with StockfishPlayer(nodes=20_000) as player:
        assert all(solve(player, p) for p in mates)
        results = evaluate_puzzles([player], generated)
    assert results.accuracy(player.name, "mateIn1") == 1.0
