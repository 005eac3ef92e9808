"""The five agents of the DiffuSearch comparison, as ``Player``s over trained ``dlm`` models.

All five share the tokenizer (``encoding``) and, in a comparison, the backbone size:

- ``DiffuSearchPlayer``: the diffusion policy that imagines the future. The canvas after
  ``state [SEP]`` is all masks; MGDM easy-first re-mask decoding (``policy="remask"``, T = 20
  steps, Gumbel noise 0.5 t/T) with the move position held masked until the last step
  (``remask_hold=1``), so the move is read from the first position after the future is
  decoded. The predicted line and boards come with the decision. dlm's re-mask keeps a
  committed token with its commit confidence; ``reference=True`` decodes exactly as
  DiffuSearch's ``generate_samples`` does (every position re-predicted each step and re-ranked
  by its current score, the Gumbel noise drawn as its ``topk_masking``: ``remask_carry=False``,
  ``rng="mgdm"``), token for token on the same weights.
- ``PolicyPlayer`` (S-A): one forward of a causal model over ``state [SEP]``; the move token
  with the highest logit.
- ``ActionValuePlayer`` (SA-V): the expected win probability of ``state move [SEP]`` for every
  legal move (one batch); the highest.
- ``StateValuePlayer`` (S-V): the expected win probability of each successor state, which is the
  opponent's; the move whose successor is lowest for the opponent.
- ``MCTSPlayer``: AlphaZero's PUCT without rollouts: the S-A softmax over legal moves as the prior,
  S-V's expected win probability as the leaf value, ``c_puct`` = 0.1 and 100 simulations as the
  reference's script; the most visited move (ties: higher mean value). Deliberate fix of the
  reference's scale mismatch (its leaves are in [0, 1] but its terminal values are +-1 and its
  draws epsilon): every value here is a win probability in [0, 1], so a won terminal is 1, a
  lost one 0 and a draw 0.5, on the scale of the leaves and of c_puct = 0.1.

Every choice is restricted to legal moves; ``Decision.illegal_prediction`` says when the
unrestricted choice (the argmax over the whole vocabulary at the move position for S-A and
DiffuSearch) was not a legal move. A value head's expected value is
``sum softmax(bin logits) * (i + 0.5) / 128`` over the 128 bin tokens alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import chess
import torch

from dlm.errors import DlmUserError
from dlm.models import DiffusionLM
from dlm.sampling import SamplerSettings, generate

from .encoding import (
    MOVE_INDEX,
    MOVES,
    board_from_string,
    board_string,
    chess_vocab,
    parse_future,
)
from .engine import VALUE_BINS
from .player import Decision

__all__ = [
    "ActionValuePlayer",
    "DiffuSearchPlayer",
    "MCTSPlayer",
    "PolicyPlayer",
    "StateValuePlayer",
]

_VOCAB = chess_vocab()
_TOKENS = {i: t for t, i in _VOCAB.items()}
_SEP, _MASK = _VOCAB["[SEP]"], _VOCAB["[MASK]"]
_MOVE0 = _VOCAB[MOVES[0]]
_BIN0 = _VOCAB["<0>"]
_BIN_CENTRES = (torch.arange(VALUE_BINS, dtype=torch.float32) + 0.5) / VALUE_BINS


def _board_ids(board: chess.Board) -> list[int]:
    return [_VOCAB[ch] for ch in board_string(board)]


def _move_id(move: chess.Move) -> int:
    return _MOVE0 + MOVE_INDEX[move.uci()]


def _legal(board: chess.Board) -> list[chess.Move]:
    return sorted(board.legal_moves, key=chess.Move.uci)


def _check_vocab(model: DiffusionLM, who: str) -> None:
    if model.vocab_size < len(_VOCAB):
        raise DlmUserError(
            f"{who} needs a model trained with the chess tokenizer ({len(_VOCAB)} tokens); "
            f"this one has {model.vocab_size}"
        )


@torch.no_grad()
def _last_logits(model: DiffusionLM, rows: list[list[int]]) -> torch.Tensor:
    """(B, V) logits predicting the token after each row (rows of one length)."""
    ids = torch.tensor([r + [_MASK] for r in rows], device=model.device)
    return model(ids)[:, -1].float()


def expected_values(model: DiffusionLM, rows: list[list[int]], batch: int = 256) -> torch.Tensor:
    """(B,) expected win probability of the bin token after each row (same-length rows)."""
    out = []
    for i in range(0, len(rows), batch):
        logits = _last_logits(model, rows[i : i + batch])[:, _BIN0 : _BIN0 + VALUE_BINS]
        out.append(torch.softmax(logits, -1) @ _BIN_CENTRES.to(logits.device))
    return torch.cat(out).cpu()


class PolicyPlayer:
    """S-A: the move token a causal one-step policy scores highest, among the legal moves."""

    def __init__(self, model: DiffusionLM, name: str = "s-a") -> None:
        _check_vocab(model, "S-A")
        self.model, self.name = model.eval(), name

    def move_logits(self, board: chess.Board) -> tuple[list[chess.Move], torch.Tensor, bool]:
        """(legal moves, their logits, whether the unrestricted argmax was illegal)."""
        logits = _last_logits(self.model, [_board_ids(board) + [_SEP]])[0]
        legal = _legal(board)
        ids = torch.tensor([_move_id(m) for m in legal])
        illegal = int(logits.argmax()) not in set(ids.tolist())
        return legal, logits[ids], illegal

    def choose(self, board: chess.Board) -> Decision:
        legal, logits, illegal = self.move_logits(board)
        return Decision(legal[int(logits.argmax())], illegal_prediction=illegal)


class ActionValuePlayer:
    """SA-V: the legal move of the highest expected win probability."""

    def __init__(self, model: DiffusionLM, name: str = "sa-v") -> None:
        _check_vocab(model, "SA-V")
        self.model, self.name = model.eval(), name

    def choose(self, board: chess.Board) -> Decision:
        state = _board_ids(board)
        legal = _legal(board)
        values = expected_values(self.model, [state + [_move_id(m), _SEP] for m in legal])
        best = int(values.argmax())
        return Decision(legal[best], scores={m.uci(): float(v) for m, v in zip(legal, values)})


def _terminal_value(board: chess.Board) -> float | None:
    """The side to move's value of a finished position (lost 0, drawn 0.5), else None."""
    if board.is_checkmate():
        return 0.0
    drawn = board.is_stalemate() or board.is_insufficient_material()
    if drawn or board.halfmove_clock >= 100 or board.is_repetition(3):
        return 0.5
    return None


class StateValuePlayer:
    """S-V: the legal move after which the opponent's expected win probability is lowest."""

    def __init__(self, model: DiffusionLM, name: str = "s-v") -> None:
        _check_vocab(model, "S-V")
        self.model, self.name = model.eval(), name

    def values(self, boards: list[chess.Board]) -> torch.Tensor:
        """Each board's value for its side to move (terminal positions by the rules)."""
        out = torch.empty(len(boards))
        open_rows, where = [], []
        for i, b in enumerate(boards):
            terminal = _terminal_value(b)
            if terminal is None:
                open_rows.append(_board_ids(b) + [_SEP])
                where.append(i)
            else:
                out[i] = terminal
        if open_rows:
            out[where] = expected_values(self.model, open_rows)
        return out

    def choose(self, board: chess.Board) -> Decision:
        legal = _legal(board)
        after = []
        for m in legal:
            b = board.copy()
            b.push(m)
            after.append(b)
        opponent = self.values(after)
        best = int(opponent.argmin())
        return Decision(legal[best], scores={m.uci(): 1 - float(v) for m, v in zip(legal, opponent)})


@dataclass
class _Node:
    prior: float
    visits: int = 0
    value_sum: float = 0.0  # from the view of the side that moved into this node
    children: dict[chess.Move, _Node] = field(default_factory=dict)
    expanded: bool = False

    @property
    def q(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0


class MCTSPlayer:
    """PUCT over the S-A prior and S-V leaf values (see the module docstring)."""

    def __init__(
        self,
        policy: PolicyPlayer,
        value: StateValuePlayer,
        simulations: int = 100,
        c_puct: float = 0.1,
        name: str = "mcts",
    ) -> None:
        if simulations < 1:
            raise DlmUserError(f"MCTS simulations must be at least 1; got {simulations}")
        self.policy, self.value = policy, value
        self.simulations, self.c_puct, self.name = simulations, c_puct, name

    def _expand(self, node: _Node, board: chess.Board) -> float:
        """Expand ``node`` (``board`` to move) and return its value for the side to move."""
        terminal = _terminal_value(board)
        if terminal is not None:
            node.expanded = True
            return terminal
        legal, logits, _ = self.policy.move_logits(board)
        priors = torch.softmax(logits, -1).tolist()
        node.children = {m: _Node(p) for m, p in zip(legal, priors)}
        node.expanded = True
        return float(self.value.values([board])[0])

    def _select(self, node: _Node, first_play: float) -> tuple[chess.Move, _Node]:
        root_n = math.sqrt(max(node.visits, 1))

        def score(item: tuple[chess.Move, _Node]) -> float:
            child = item[1]
            q = child.q if child.visits else first_play
            return q + self.c_puct * child.prior * root_n / (1 + child.visits)

        return max(node.children.items(), key=score)

    def search(self, board: chess.Board) -> tuple[_Node, bool]:
        """The search tree's root after ``simulations`` simulations, and whether the S-A
        prior's unrestricted argmax was illegal."""
        if board.is_game_over():
            raise DlmUserError(f"MCTS was asked to move in a finished game: {board.fen()}")
        root = _Node(1.0)
        legal, logits, illegal = self.policy.move_logits(board)  # the root always has moves
        root.children = {m: _Node(p) for m, p in zip(legal, torch.softmax(logits, -1).tolist())}
        root.expanded, root.visits = True, 1
        root_q = float(self.value.values([board])[0])  # the side to move's value of the root
        for _ in range(self.simulations):
            node, b, path = root, board.copy(), []
            while node.expanded and node.children:
                # first-play value of an unvisited move: the value of its parent for the side
                # choosing (not 0, which on this [0, 1] scale would call every untried move lost)
                first_play = root_q if node is root else 1.0 - node.q  # node.q: the other side's
                move, node = self._select(node, first_play)
                b.push(move)
                path.append(node)
            if node.expanded:  # a finished position reached again
                terminal = _terminal_value(b)
                value = 0.5 if terminal is None else terminal
            else:
                value = self._expand(node, b)
            # value is for the side to move at the leaf; the node's mover is the other side
            for child in reversed(path):
                value = 1.0 - value
                child.visits += 1
                child.value_sum += value
            root.visits += 1
        return root, illegal

    def choose(self, board: chess.Board) -> Decision:
        root, illegal = self.search(board)
        move, _ = max(root.children.items(), key=lambda kv: (kv[1].visits, kv[1].q))
        scores = {m.uci(): float(c.visits) for m, c in root.children.items()}
        return Decision(move, illegal_prediction=illegal, scores=scores)


class DiffuSearchPlayer:
    """The move read from the first position of a re-mask-decoded future (module docstring)."""

    def __init__(
        self,
        model: DiffusionLM,
        steps: int = 20,
        remask_noise: float = 0.5,
        seed: int | None = 0,
        name: str = "diffusearch",
        reference: bool = False,
    ) -> None:
        _check_vocab(model, "DiffuSearch")
        length = model.generation_defaults.get("max_new_tokens")
        if not length:
            raise DlmUserError("a DiffuSearch model records its target length (max_new_tokens)")
        self.model, self.name = model.eval(), name
        self.settings = SamplerSettings(
            max_new_tokens=int(length),
            steps=steps,
            policy="remask",
            remask_noise=remask_noise,
            remask_hold=1,
            remask_carry=not reference,
            rng="mgdm" if reference and remask_noise > 0 else "dlm",
            seed=seed,
        )

    def choose(self, board: chess.Board) -> Decision:
        prompt = torch.tensor([_board_ids(board) + [_SEP]], device=self.model.device)
        out = generate(self.model, prompt, settings=self.settings)
        region = out.generated[0]
        legal = _legal(board)
        first = int(region[0])
        ids = [_move_id(m) for m in legal]
        if first in ids:
            move, illegal = legal[ids.index(first)], False
        else:  # the first position's logits over the legal moves, on the decoded canvas
            canvas = out.sequences.clone()
            canvas[0, out.prompt_length] = _MASK
            with torch.no_grad():
                logits = self.model(canvas)[0, out.prompt_length].float()
            move, illegal = legal[int(logits[ids].argmax())], True
        line, boards = self._future(board, move, region[1:].tolist())
        return Decision(move, line=line, boards=boards, illegal_prediction=illegal)

    def _future(
        self, board: chess.Board, move: chess.Move, ids: list[int]
    ) -> tuple[tuple[chess.Move, ...], tuple[str, ...]]:
        """The predicted moves after ``move`` and the predicted boards (as FEN) they are played
        on, as far as the prediction reads as a future at all."""
        text = " ".join(_TOKENS[i] for i in ids if i in _TOKENS)
        moves, boards = parse_future(text)
        fens = []
        for s in boards:
            try:
                fens.append(board_from_string(s).fen())
            except DlmUserError:
                break
        line = []
        for uci in moves:
            try:
                line.append(chess.Move.from_uci(uci))
            except ValueError:
                break
        return tuple(line), tuple(fens)
