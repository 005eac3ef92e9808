"""Random truncation (Dream-Coder SFT): every response stays whole with its EOS, only padding
is cut, the width varies over the allowed range, and the Trainer applies it per batch."""

from __future__ import annotations

import pytest
import torch

from dlm.config import ConfigError
from dlm.data import content_lengths, encode_pairs, random_truncation, truncate_batch
from dlm.training import setup as training_setup
from dlm.training import train
from dlm.training.objectives import build_objective
from dlm.training.trainer import Trainer
from training.test_trainer import tiny_config


def _pairs(char_tokenizer, seq_len=24):
    prompts = ["ab", "abcd", "a"]
    targets = ["123", "1", "12345678"]
    return encode_pairs(char_tokenizer, prompts, targets, seq_len)


def test_content_lengths_end_at_each_rows_eos(char_tokenizer):
    data = _pairs(char_tokenizer)
    lengths = content_lengths(data).tolist()
    eos = char_tokenizer.eos_token_id
    for row, length in enumerate(lengths):
        assert data.input_ids[row, length - 1] == eos
        assert not data.loss_mask[row, length:].any()


def test_random_truncation_keeps_every_response_and_its_eos(char_tokenizer):
    data = _pairs(char_tokenizer)
    longest = int(content_lengths(data).max())
    widths = set()
    for seed in range(200):
        cut = random_truncation(data, torch.Generator().manual_seed(seed))
        widths.add(cut.seq_len)
        assert torch.equal(cut.loss_mask.sum(1), data.loss_mask.sum(1))  # responses + EOS whole
        assert torch.equal(cut.input_ids, data.input_ids[:, : cut.seq_len])
        assert torch.equal(cut.noisable, data.noisable[:, : cut.seq_len])
    assert widths == set(range(longest, data.seq_len + 1))  # uniform over the whole range


def test_truncate_batch_refuses_a_width_outside_the_rows(char_tokenizer):
    data = _pairs(char_tokenizer)
    with pytest.raises(ValueError, match="width must lie in"):
        truncate_batch(data, data.seq_len + 1)


def test_the_trainer_cuts_each_batch_and_a_rerun_cuts_it_the_same_way(tmp_path):
    def widths(out):
        seen = []
        cfg = tiny_config(
            out, "data.truncation=random", "data.seq_len=48", "model.max_positions=48"
        )
        prepared = training_setup.prepare_data(cfg)
        model = training_setup.build_model(cfg, prepared.tokenizer)
        objective = build_objective(cfg)

        def spy(model, batch, step):
            seen.append(batch.seq_len)
            return objective(model, batch, step)

        Trainer(cfg, model, prepared.tokenizer, prepared.train, objective=spy, header=False).fit()
        return seen, prepared.train

    first, data = widths(tmp_path / "a")
    second, _ = widths(tmp_path / "b")
    assert first == second and len(set(first)) > 1
    assert min(first) >= int(content_lengths(data).max()) and max(first) <= 48


def test_truncation_refuses_packed_text(tmp_path):
    with pytest.raises(ConfigError, match="data.truncation=random"):
        train(tiny_config(tmp_path, "objective=pretrain", "data.truncation=random"))
