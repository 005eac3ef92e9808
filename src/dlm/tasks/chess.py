"""Chess as a task: the DiffuSearch data of ``dlm chess make`` in each agent's layout.

    dlm train recipes/chess/diffusearch.yaml       # data.task: chess, agent: diffusearch

One ``ChessTask(agent=..., data=DIR)`` per agent (``dlm.chess.encoding`` has the layouts):

- ``diffusearch``: prompt the board, target ``a s1 a1 s2 a2 ...`` (``horizon`` moves, from
  Stockfish playing both sides); trained as masked diffusion on everything after ``[SEP]``.
- ``s-a``: target the move (the one-step policy).
- ``s-v``: target the win-probability bin of the side to move.
- ``sa-v``: prompt the board and a move, target the bin of that move's win probability; each
  position gives one example per legal move (shuffled with the seed, cut at ``n_train``).

The split is by game (``dlm chess make``'s test games are never trained on); ``held_out``
takes the first ``n_train`` training records after a seeded shuffle and the first ``n_test``
test records in game order. Metrics: ``action_accuracy`` (the first move is Stockfish's, the
paper's metric; also ``verify``), ``legal`` (the first move is legal), and for the value
agents ``value_error`` (|predicted - labelled win probability|; ``verify``: within 0.05).

python-chess is imported when the task is built, so ``dlm.tasks`` loads without the extra.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from transformers import PreTrainedTokenizerFast

from dlm.errors import DlmUserError

from .base import Example, Metric, Progress, Task

__all__ = ["AGENTS", "ChessTask"]

AGENTS = ("diffusearch", "s-a", "s-v", "sa-v")
_BOARD = 76


class ChessTask(Task):
    name = "chess"

    def __init__(self, agent: str = "diffusearch", data: str | None = None, horizon: int = 4) -> None:
        if agent not in AGENTS:
            raise DlmUserError(f"chess agent {agent!r} is not one of {', '.join(AGENTS)}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise DlmUserError(f"chess horizon must be a whole number >= 1; got {horizon!r}")
        try:
            import chess  # noqa: F401
        except ImportError:
            raise DlmUserError(
                "the chess task needs python-chess: pip install -e '.[chess]'"
            ) from None
        self.agent, self.data, self.horizon = agent, data, horizon

    def __repr__(self) -> str:
        return f"ChessTask(agent={self.agent!r}, data={self.data!r}, horizon={self.horizon})"

    # ---- Task protocol ------------------------------------------------------------------
    @property
    def max_answer_tokens(self) -> int:
        if self.agent == "diffusearch":
            return self.horizon + (self.horizon - 1) * _BOARD + 1
        return 2  # one move or one bin, and [EOS]

    def tokenizer(self) -> PreTrainedTokenizerFast:
        from dlm.chess.encoding import chess_tokenizer

        return chess_tokenizer()

    def examples(self, records: list[dict[str, Any]]) -> list[Example]:
        """The agent's examples of some ``dlm chess make`` records."""
        import chess

        from dlm.chess.encoding import board_string, diffusearch_target, value_token
        from dlm.chess.engine import value_bin

        out = []
        for r in records:
            board = chess.Board(r["fen"])
            state = board_string(board)
            meta = {"fen": r["fen"], "best": r["best"], "game": r["game"]}
            if self.agent == "diffusearch":
                line = r["line"][: self.horizon]
                out.append(Example(state, diffusearch_target(board, line), meta))
            elif self.agent == "s-a":
                out.append(Example(state, r["best"], meta))
            elif self.agent == "s-v":
                meta["value"] = r["value"]
                out.append(Example(state, value_token(value_bin(r["value"])), meta))
            else:
                values = r.get("action_values")
                if not values:
                    raise DlmUserError(
                        f"{self.data} has no action values (made with --no-action-values); "
                        "SA-V needs a `dlm chess make` run with them"
                    )
                for move, value in values.items():
                    meta_m = {**meta, "move": move, "value": value}
                    out.append(Example(f"{state} {move}", value_token(value_bin(value)), meta_m))
        return out

    def _records(self, split: str) -> list[dict[str, Any]]:
        from dlm.chess.dataset import load_records

        if self.data is None:
            raise DlmUserError(
                "the chess task reads `dlm chess make` data: set data.task_options.data to its "
                "directory"
            )
        return load_records(self.data, split)

    def generate(self, n: int, seed: int = 0, *, progress: Progress | None = None) -> list[Example]:
        return self.held_out(n, 0, seed, progress=progress)[0]

    def held_out(
        self, n_train: int, n_test: int, seed: int = 0, *, progress: Progress | None = None
    ) -> tuple[list[Example], list[Example]]:
        train = self.examples(self._records("train")) if n_train else []
        random.Random(seed).shuffle(train)
        test = self.examples(self._records("test"))[:n_test] if n_test else []
        if len(train) < n_train:
            raise DlmUserError(
                f"{self.data} has {len(train)} {self.agent} training examples, fewer than the "
                f"{n_train} asked for; lower data.n_train or make more games"
            )
        if len(test) < n_test:
            raise DlmUserError(
                f"{self.data} has {len(test)} {self.agent} test examples, fewer than the "
                f"{n_test} asked for; lower data.n_eval / --n or make more games"
            )
        if progress is not None:
            progress(n_train + n_test)
        return train[:n_train], test

    def _first(self, answer: str) -> str | None:
        from dlm.chess.encoding import split_tokens

        tokens = split_tokens(answer)
        return tokens[0] if tokens else None

    def answer_of(self, text: str) -> str:
        return self._first(text) or ""

    def _predicted_value(self, answer: str) -> float | None:
        from dlm.chess.engine import bin_value

        token = self._first(answer)
        if token is None or not (token.startswith("<") and token.endswith(">")):
            return None
        return bin_value(int(token[1:-1]))

    def action_accuracy(self, example: Example, answer: str) -> bool:
        return self._first(answer) == example.meta["best"]

    def legal(self, example: Example, answer: str) -> bool:
        import chess

        move = self._first(answer)
        board = chess.Board(example.meta["fen"])
        try:
            return chess.Move.from_uci(move or "") in board.legal_moves
        except ValueError:
            return False

    def value_error(self, example: Example, answer: str) -> float:
        value = self._predicted_value(answer)
        return 1.0 if value is None else abs(value - example.meta["value"])

    def verify(self, example: Example, answer: str) -> bool:
        if self.agent in ("s-v", "sa-v"):
            return self.value_error(example, answer) <= 0.05
        return self.action_accuracy(example, answer)

    def bucket(self, example: Example) -> str:
        """The phase of the game (``dlm.chess.dataset.game_phase``)."""
        import chess

        from dlm.chess.dataset import game_phase

        return game_phase(chess.Board(example.meta["fen"]))

    def render(self, prompt: str, answer: str) -> str:
        """The position as a diagram and the predicted moves in SAN (an illegal one marked ?)."""
        import chess

        from dlm.chess.encoding import board_from_string, parse_future

        try:
            board = board_from_string(prompt.split()[0])
        except DlmUserError:
            return answer
        diagram = board.unicode()
        sans = []
        for uci in parse_future(answer)[0]:
            move = chess.Move.from_uci(uci)
            if move not in board.legal_moves:
                sans.append(f"{uci}?")
                break
            sans.append(board.san(move))
            board.push(move)
        return diagram + "\n" + (" ".join(sans) or answer)

    @cached_property
    def metrics(self) -> Mapping[str, Metric]:
        table: dict[str, Callable[[Example, str], Any]] = {"verify": self.verify}
        if self.agent in ("diffusearch", "s-a"):
            table.update(action_accuracy=self.action_accuracy, legal=self.legal)
        else:
            table["value_error"] = self.value_error
        return table
