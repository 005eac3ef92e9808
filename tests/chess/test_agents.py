"""The five agents: each trains and its loss goes down, each plays only legal moves, the
chess task's layouts match the agents' reading of them, MCTS finds a mate in one."""

from __future__ import annotations

import chess
import pytest
import torch

from chess_helpers import needs_stockfish, train_agent
from dlm.checkpoints import load_model
from dlm.chess.agents import (
    ActionValuePlayer,
    DiffuSearchPlayer,
    MCTSPlayer,
    PolicyPlayer,
    StateValuePlayer,
)
from dlm.chess.encoding import BOARD_LENGTH, board_string, chess_vocab
from dlm.evaluation.chess_eval import action_accuracy, agent_kind, build_agents, load_agent
from dlm.sampling import generate
from dlm.tasks import get_task
from sampling.reference_loops import Backbone, diffusearch_generate_samples

pytestmark = needs_stockfish

MATE_IN_ONE = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"  # Ra8#


@pytest.mark.parametrize("agent", ["diffusearch", "s-a", "s-v", "sa-v"])
def test_each_agent_trains_and_its_loss_goes_down(agent, chess_data, tmp_path):
    _, result = train_agent(agent, chess_data, tmp_path / agent, steps=40)
    losses = result.losses
    assert len(losses) == 40
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.8 * first, (agent, first, last)


def test_the_task_layouts(chess_data):
    ds = get_task("chess", agent="diffusearch", data=str(chess_data), horizon=3)
    train, test = ds.held_out(20, 4, seed=0)
    tok = ds.tokenizer()
    for e in train:
        assert len(tok.encode(e.prompt, add_special_tokens=False)) == BOARD_LENGTH
        target = tok.encode(e.target, add_special_tokens=False)
        assert len(target) + 1 <= ds.max_answer_tokens  # [EOS] included
        assert ds.verify(e, e.target) and ds.metrics["legal"](e, e.target)
    full = [e for e in train if e.target.count(" ") == 4]  # three moves, two boards
    assert full and all(len(tok.encode(e.target, add_special_tokens=False)) + 1 == ds.max_answer_tokens for e in full)
    sa = get_task("chess", agent="s-a", data=str(chess_data))
    e = sa.held_out(1, 0)[0][0]
    assert e.target == e.meta["best"] and sa.verify(e, e.target)
    assert not sa.verify(e, "a1a2") and not sa.metrics["legal"](e, "zz")
    sav = get_task("chess", agent="sa-v", data=str(chess_data))
    e = sav.held_out(1, 0)[0][0]
    assert e.prompt.split()[1] == e.meta["move"] and sav.verify(e, e.target)
    assert sav.metrics["value_error"](e, e.target) <= 0.5 / 128 + 1e-9
    assert {x.meta["game"] for x in test}.isdisjoint({x.meta["game"] for x in train})


def test_every_agent_plays_legal_moves_and_reports_illegal_predictions(tiny_agents, chess_data):
    players = build_agents([str(p) for p in tiny_agents.values()] + ["mcts"], simulations=8, steps=4)
    assert [type(p) for p in players] == [
        DiffuSearchPlayer, PolicyPlayer, StateValuePlayer, ActionValuePlayer, MCTSPlayer
    ]  # fmt: skip
    from dlm.chess.dataset import load_records

    records = load_records(chess_data, "test")[:6]
    rows = action_accuracy(players, records)
    for row in rows:
        assert row.positions == 6 and 0 <= row.correct <= 6 and 0 <= row.illegal <= 6
    for player in players:
        for r in records:
            board = chess.Board(r["fen"])
            decision = player.choose(board)
            assert decision.move in board.legal_moves
    ds = players[0]
    decision = ds.choose(chess.Board())
    assert isinstance(decision.line, tuple) and isinstance(decision.boards, tuple)


def test_diffusearch_reads_the_move_after_the_future(tiny_agents):
    model = load_model(tiny_agents["diffusearch"])
    player = DiffuSearchPlayer(model, steps=6)
    assert player.settings.remask_hold == 1 and player.settings.policy == "remask"
    assert player.settings.max_new_tokens == 3 + 2 * BOARD_LENGTH + 1
    assert agent_kind(tiny_agents["diffusearch"]) == "diffusearch"


@pytest.mark.parametrize("seed", [0, 7])
def test_diffusearch_reference_decoder_replays_generate_samples(tiny_agents, seed):
    """``reference=True`` decodes the canvas DiffuSearch's ``generate_samples`` decodes on the
    same weights (re-predict everything, current-score ranking, its Gumbel draws, held move)."""
    model = load_model(tiny_agents["diffusearch"])
    player = DiffuSearchPlayer(model, steps=6, reference=True, seed=seed)
    assert not player.settings.remask_carry and player.settings.rng == "mgdm"
    vocab = chess_vocab()
    board = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    prompt = torch.tensor([[vocab[c] for c in board_string(board)] + [vocab["[SEP]"]]])
    settings = player.settings.replace(stop_at_eos=False)
    out = generate(model, prompt, settings=settings).sequences
    n = player.settings.max_new_tokens
    canvas = torch.cat([prompt, torch.zeros(1, n, dtype=prompt.dtype)], dim=1)
    src = torch.zeros(canvas.shape, dtype=torch.bool)
    src[:, : prompt.shape[1]] = True
    torch.manual_seed(seed)
    ref = diffusearch_generate_samples(
        Backbone(model).full, canvas, src, 6, noise=0.5, mask_token_id=vocab["[MASK]"]
    )
    assert torch.equal(out, ref)
    decision = player.choose(board)
    assert decision.move in board.legal_moves


class _UniformPolicy(PolicyPlayer):
    """A prior that knows nothing (every legal move equally likely)."""

    def __init__(self, model):
        super().__init__(model)

    def move_logits(self, board):
        legal = sorted(board.legal_moves, key=chess.Move.uci)
        return legal, torch.zeros(len(legal)), False


class _FlatValue(StateValuePlayer):
    """A value that knows nothing but the rules (0.5 for every open position)."""

    def values(self, boards):
        out = super().values(boards)
        return torch.where((out == 0.0) | (out == 1.0), out, torch.full_like(out, 0.5))


def test_mcts_finds_a_mate_in_one(tiny_agents):
    sa, sv = load_agent(tiny_agents["s-a"]), load_agent(tiny_agents["s-v"])
    board = chess.Board(MATE_IN_ONE)
    mate = chess.Move.from_uci("a1a8")
    # with what the tiny models learned
    assert MCTSPlayer(sa, sv, simulations=100).choose(board).move == mate
    # and with a prior and values that know nothing: only the search can find it
    blind = MCTSPlayer(_UniformPolicy(sa.model), _FlatValue(sv.model), simulations=100)
    decision = blind.choose(board)
    assert decision.move == mate
    assert decision.scores["a1a8"] == max(decision.scores.values())


def test_state_value_player_takes_a_mate_in_one_by_the_rules(tiny_agents):
    sv = load_agent(tiny_agents["s-v"])
    assert sv.choose(chess.Board(MATE_IN_ONE)).move == chess.Move.from_uci("a1a8")
