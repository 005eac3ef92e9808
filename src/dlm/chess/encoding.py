"""The DiffuSearch encoding: a position as 76 characters, a move as one token, a value as a bin.

**Board string** (``board_string`` / ``board_from_string``), the reference's fixed 76
characters: the 64 squares from a8 to h1 (rank 8 first, ``.`` for an empty square, no
slashes), the side to move (``w``/``b``), the castling rights padded with ``.`` to 4, the
en-passant square padded to 2 (``-.`` when there is none), the half-move clock padded to 2
and the full-move number padded to 3. For example the start position is
``rnbqkbnrpppppppp................................PPPPPPPPRNBQKBNRwKQkq-.0.1..``.
Deviations, deliberate: the en-passant square is python-chess's *legal* one (written only
when a capture there is legal, so two equal positions get one string), and its file letter is
a token of its own for every file (the reference's tokenizer turns every file but ``b`` into
``[UNK]``, so its boards lose the en-passant square); a half-move clock above 99 is written as
99 and a full-move number above 999 as 999 (the string has no room; nothing else is lost).

**Moves**: one token per UCI move of the 1,968-move list every chess policy network uses: from
each square, every queen-line and knight destination on the board (1,792), plus the 176
under- and queen-promotions written with their suffix (``a7a8q``; python-chess always writes
one). ``MOVES`` lists them in a fixed order (from-square a1..h8, then to-square, then the
promotions); every legal move of any position is one of them.

**Values**: ``VALUE_BINS`` = 128 win-probability bins, tokens ``<0>`` .. ``<127>``.

**Sequence layout** (``diffusearch_target``): ``state [SEP] a s1 a1 s2 a2 ... [EOS] [PAD]...``:
the move, then for each further move of the future line the board it is played on, then that
move (h moves and h-1 boards; h = 4 gives 4 + 3 x 76 = 232 target tokens). The reference puts
a space token between the pieces; dlm does not (the layout is fixed, so the spaces carry
nothing and cost 25% more positions). The baselines' layouts: S-A ``state [SEP] a``, S-V
``state [SEP] <v>``, SA-V ``state a [SEP] <v>``.

``chess_tokenizer()`` builds all of it as one ``PreTrainedTokenizerFast``: ids ``[PAD]`` 0,
``[SEP]`` 1, ``[MASK]`` 2, ``[EOS]`` 3, ``[UNK]`` 4 (the task tokenizers' order), the board
characters, the moves, the value bins. In text, moves, boards and bins are separated by
spaces; decoding writes a space between every two tokens, and ``split_tokens`` reads both.
"""

from __future__ import annotations

from functools import lru_cache

import chess
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from dlm.errors import DlmUserError

from .engine import VALUE_BINS

__all__ = [
    "BOARD_CHARS",
    "BOARD_LENGTH",
    "MOVES",
    "MOVE_INDEX",
    "board_from_string",
    "board_string",
    "chess_tokenizer",
    "diffusearch_target",
    "parse_future",
    "split_tokens",
    "value_token",
]

BOARD_LENGTH = 76
#: The characters a board string uses (``b`` is both the black bishop and black to move).
BOARD_CHARS = "0123456789kqrbnpKQRBNP-.wacdefgh"
_SPECIAL = ("[PAD]", "[SEP]", "[MASK]", "[EOS]", "[UNK]")
_MOVE_PATTERN = r"[a-h][1-8][a-h][1-8][qrbn]?"
_TOKEN_PATTERN = _MOVE_PATTERN + r"|<\d+>|\S"


def _line_moves() -> list[str]:
    moves = []
    for start in chess.SQUARES:
        f0, r0 = chess.square_file(start), chess.square_rank(start)
        targets = []
        for end in chess.SQUARES:
            if end == start:
                continue
            df, dr = chess.square_file(end) - f0, chess.square_rank(end) - r0
            queen_line = df == 0 or dr == 0 or abs(df) == abs(dr)
            knight = {abs(df), abs(dr)} == {1, 2}
            if queen_line or knight:
                targets.append(end)
        moves += [chess.Move(start, end).uci() for end in targets]
    return moves


def _promotions() -> list[str]:
    moves = []
    for from_rank, to_rank in ((6, 7), (1, 0)):  # white 7th -> 8th, black 2nd -> 1st
        for file in range(8):
            for df in (-1, 0, 1):
                if 0 <= file + df < 8:
                    for piece in "qrbn":
                        start = chess.square(file, from_rank)
                        end = chess.square(file + df, to_rank)
                        moves.append(chess.Move(start, end).uci() + piece)
    return moves


MOVES: tuple[str, ...] = tuple(_line_moves() + _promotions())
MOVE_INDEX: dict[str, int] = {m: i for i, m in enumerate(MOVES)}
assert len(MOVES) == 1968 and len(MOVE_INDEX) == 1968


def board_string(board: chess.Board) -> str:
    """The 76-character string of a position."""
    squares = []
    for rank in range(7, -1, -1):
        for file in range(8):
            piece = board.piece_at(chess.square(file, rank))
            squares.append(piece.symbol() if piece else ".")
    fields = board.fen(en_passant="legal").split()
    side, castling, ep = fields[1], fields[2], fields[3]
    half = str(min(board.halfmove_clock, 99))
    full = str(min(board.fullmove_number, 999))
    out = "".join(squares) + side + castling.ljust(4, ".") + ep.ljust(2, ".")
    out += half.ljust(2, ".") + full.ljust(3, ".")
    assert len(out) == BOARD_LENGTH, out
    return out


def board_from_string(text: str) -> chess.Board:
    """The position a 76-character board string describes (``DlmUserError`` if it is not one)."""
    if len(text) != BOARD_LENGTH:
        raise DlmUserError(
            f"a board string has {BOARD_LENGTH} characters; got {len(text)}: {text!r}"
        )
    rows = []
    for rank in range(8):
        row, empty = "", 0
        for ch in text[rank * 8 : rank * 8 + 8]:
            if ch == ".":
                empty += 1
                continue
            row += (str(empty) if empty else "") + ch
            empty = 0
        rows.append(row + (str(empty) if empty else ""))
    side, castling = text[64], text[65:69].rstrip(".") or "-"
    ep, half, full = text[69:71].rstrip("."), text[71:73].rstrip("."), text[73:76].rstrip(".")
    fen = f"{'/'.join(rows)} {side} {castling} {ep} {half} {full}"
    try:
        return chess.Board(fen)
    except ValueError as err:
        raise DlmUserError(f"{text!r} is not a board string: {err}") from None


def value_token(index: int) -> str:
    """The token of a value bin."""
    if not 0 <= index < VALUE_BINS:
        raise DlmUserError(f"a value bin lies in [0, {VALUE_BINS}); got {index}")
    return f"<{index}>"


def diffusearch_target(board: chess.Board, line: list[str] | tuple[str, ...]) -> str:
    """The target text after ``[SEP]``: ``a s1 a1 s2 a2 ...`` for the moves of ``line``
    (UCI, played from ``board``): each move after the first is preceded by the board it is
    played on."""
    if not line:
        raise DlmUserError("a DiffuSearch target needs at least the move itself")
    board = board.copy(stack=False)
    parts = []
    for i, uci in enumerate(line):
        move = chess.Move.from_uci(uci)
        if move not in board.legal_moves:
            raise DlmUserError(f"move {i} of the line, {uci}, is not legal in {board.fen()}")
        if i:
            parts.append(board_string(board))
        parts.append(uci)
        board.push(move)
    return " ".join(parts)


def split_tokens(text: str) -> list[str]:
    """The tokens of a text in this encoding (moves, bins, single characters)."""
    return [piece for piece, _ in _pre_tokenizer().pre_tokenize_str(text)]


def parse_future(text: str) -> tuple[list[str], list[str]]:
    """(moves, boards) read from a decoded target: every move token in order, and each
    complete 76-character run of board characters between them (a run of another length,
    which a model can write, is dropped)."""
    moves, boards, run = [], [], []
    for token in split_tokens(text):
        if token in MOVE_INDEX:
            if len(run) == BOARD_LENGTH:
                boards.append("".join(run))
            run = []
            moves.append(token)
        elif len(token) == 1:
            run.append(token)
    if len(run) == BOARD_LENGTH:
        boards.append("".join(run))
    return moves, boards


@lru_cache(maxsize=1)
def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(pattern=Regex(_TOKEN_PATTERN), behavior="isolated"),
        ]
    )


def chess_vocab() -> dict[str, int]:
    """Token -> id: the specials, the board characters, the moves, the value bins."""
    tokens = [*_SPECIAL, *BOARD_CHARS, *MOVES, *(f"<{i}>" for i in range(VALUE_BINS))]
    return {token: i for i, token in enumerate(tokens)}


def chess_tokenizer() -> PreTrainedTokenizerFast:
    """The one tokenizer of every chess agent (see the module docstring)."""
    backend = Tokenizer(models.WordLevel(vocab=chess_vocab(), unk_token="[UNK]"))
    backend.pre_tokenizer = _pre_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        eos_token="[EOS]",
        unk_token="[UNK]",
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )
    for expected, token in enumerate(_SPECIAL):
        if tokenizer.convert_tokens_to_ids(token) != expected:  # pragma: no cover
            raise RuntimeError(f"special token {token} lost its id {expected}")
    return tokenizer
