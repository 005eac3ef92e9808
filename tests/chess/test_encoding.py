"""The DiffuSearch encoding: boards, moves and layouts round-trip through the tokenizer."""

from __future__ import annotations

import random

import chess
import pytest

from dlm.chess.encoding import (
    BOARD_LENGTH,
    MOVE_INDEX,
    MOVES,
    board_from_string,
    board_string,
    chess_tokenizer,
    diffusearch_target,
    parse_future,
    split_tokens,
)
from dlm.errors import DlmUserError


def _random_positions(n: int, seed: int = 0) -> list[chess.Board]:
    rng = random.Random(seed)
    boards = []
    while len(boards) < n:
        board = chess.Board()
        for _ in range(rng.randint(0, 120)):
            moves = sorted(board.legal_moves, key=chess.Move.uci)
            if not moves:
                break
            board.push(rng.choice(moves))
        boards.append(board)
    return boards


def test_the_move_list_is_the_1968_moves_of_a_policy_network():
    assert len(MOVES) == len(set(MOVES)) == 1968
    assert sum(len(m) == 5 for m in MOVES) == 176  # the promotions, each with its piece
    assert MOVES.index("a7a8q") == MOVE_INDEX["a7a8q"]


def test_every_legal_move_of_random_positions_is_one_token_and_back():
    tok = chess_tokenizer()
    seen = 0
    for board in _random_positions(300):
        for move in board.legal_moves:
            ids = tok.encode(move.uci(), add_special_tokens=False)
            assert len(ids) == 1, move
            assert tok.convert_ids_to_tokens(ids)[0] == move.uci()
            assert chess.Move.from_uci(tok.decode(ids)) == move
            seen += 1
    assert seen > 5000


def test_the_board_string_decodes_to_the_same_position():
    for board in _random_positions(300, seed=1):
        text = board_string(board)
        assert len(text) == BOARD_LENGTH
        back = board_from_string(text)
        if board.halfmove_clock <= 99 and board.fullmove_number <= 999:
            assert back.fen() == board.fen(en_passant="legal")
        assert back.board_fen() == board.board_fen()
        assert back.castling_rights == board.castling_rights
        assert back.turn == board.turn


@pytest.mark.parametrize(
    "fen",
    [
        # en passant on files other than b (the reference tokenizer loses them)
        "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
        "rnbqkbnr/pp1ppppp/8/8/2pPP3/8/PPP2PPP/RNBQKBNR b KQkq d3 0 3",
        "rnbqkbnr/1pppppp1/8/pP5p/8/8/P1PPPPPP/RNBQKBNR w KQkq a6 0 3",
        "4k3/8/8/8/6pP/8/8/4K3 b - h3 0 1",
        # partial castling rights, a promotion square about to be used
        "r3k2r/1P6/8/8/8/8/8/R3K2R w Kq - 0 1",
    ],
)
def test_en_passant_and_castling_survive_the_round_trip(fen):
    board = chess.Board(fen)
    text = board_string(board)
    assert board_from_string(text).fen() == board.fen(en_passant="legal")
    ids = chess_tokenizer().encode(text, add_special_tokens=False)
    assert len(ids) == BOARD_LENGTH and chess_tokenizer().unk_token_id not in ids


def test_promotions_are_their_own_tokens():
    board = chess.Board("r3k2r/1P6/8/8/8/8/8/R3K2R w Kq - 0 1")
    promotions = [m.uci() for m in board.legal_moves if m.promotion]
    assert sorted(promotions) == sorted(
        f"b7{t}{p}" for t in ("a8", "b8") for p in "qrbn"
    )
    tok = chess_tokenizer()
    ids = tok.encode(" ".join(promotions), add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == promotions


def test_the_diffusearch_target_reads_back_as_its_moves_and_boards():
    board = chess.Board()
    line = ["e2e4", "e7e5", "g1f3", "b8c6"]
    target = diffusearch_target(board, line)
    tok = chess_tokenizer()
    ids = tok.encode(target, add_special_tokens=False)
    assert len(ids) == 4 + 3 * BOARD_LENGTH
    moves, boards = parse_future(tok.decode(ids))
    assert moves == line
    replay = board.copy()
    for move, text in zip(line[:-1], boards):
        replay.push_uci(move)
        assert text == board_string(replay)
    # a promotion move followed by a board starting with a queen stays two tokens
    assert split_tokens("e7e8 qrb")[:2] == ["e7e8", "q"]


def test_a_bad_board_string_or_line_is_a_user_error():
    with pytest.raises(DlmUserError, match="76 characters"):
        board_from_string("rnbq")
    with pytest.raises(DlmUserError, match="not legal"):
        diffusearch_target(chess.Board(), ["e2e5"])
