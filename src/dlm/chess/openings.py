"""The opening list shipped with dlm (``openings.tsv``): self-play starts from these lines, and
round robins and gauntlets play each of them once with each colour.

65 ECO lines (A00 Polish .. E90 King's Indian), one to ten moves deep, written as UCI from the
start position; ``load_openings`` checks every move is legal.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import chess

from dlm.errors import DlmUserError

__all__ = ["Opening", "load_openings"]


@dataclass(frozen=True)
class Opening:
    eco: str
    name: str
    moves: tuple[str, ...]  # UCI

    def board(self) -> chess.Board:
        """The position after the opening's moves (with them on the move stack)."""
        board = chess.Board()
        for uci in self.moves:
            board.push_uci(uci)
        return board


def load_openings(path: str | None = None) -> list[Opening]:
    """The shipped openings, or those of a file in the same tab-separated form."""
    text = (
        resources.files("dlm.chess").joinpath("openings.tsv").read_text()
        if path is None
        else Path(path).read_text(encoding="utf-8")
    )
    openings = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DlmUserError(f"{path or 'openings.tsv'} line {number}: want CODE<tab>NAME<tab>MOVES")
        opening = Opening(parts[0], parts[1], tuple(parts[2].split()))
        try:
            opening.board()
        except ValueError as err:
            raise DlmUserError(
                f"{path or 'openings.tsv'} line {number}: {opening.name} has an illegal move ({err})"
            ) from None
        openings.append(opening)
    if not openings:
        raise DlmUserError(f"{path or 'openings.tsv'} lists no openings")
    return openings
