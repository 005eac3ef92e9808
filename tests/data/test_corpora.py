import pytest
import torch

from dlm.config import ConfigError
from dlm.data import DataError, corpus_documents, corpus_tokenizer, corpus_windows
from dlm.data.corpora import python_stdlib_files
from dlm.training import load_train_config, prepare_data


def test_stdlib_split_is_stable_and_disjoint():
    train, held_out = python_stdlib_files("train"), python_stdlib_files("eval")
    assert train and held_out and not set(train) & set(held_out)
    assert python_stdlib_files("eval") == held_out
    assert all("test" not in p.parts for p in train)


def test_corpus_text_round_trips_through_its_tokenizer():
    tokenizer = corpus_tokenizer("python-stdlib")
    doc = corpus_documents("python-stdlib", "eval", max_files=1)[0][:2000]
    ids = tokenizer.encode(doc, add_special_tokens=False)
    assert len(ids) == len(doc) and tokenizer.decode(ids) == doc
    assert tokenizer.unk_token_id not in ids


def test_pretrain_on_the_corpus_packs_held_out_files_apart(tmp_path):
    cfg = load_train_config(
        None, ["objective=pretrain", "data.corpus=python-stdlib", "data.seq_len=128"]
    )
    prepared = prepare_data(cfg)
    assert prepared.train.seq_len == 128 and prepared.train.noisable.all()
    assert len(prepared.eval_documents) == len(python_stdlib_files("eval"))
    ar = prepare_data(
        load_train_config(
            None,
            [
                "objective=ar",
                "model.attention=causal",
                "data.corpus=python-stdlib",
                "data.seq_len=128",
            ],
        )
    )  # the AR twin of the adaptation benchmark trains on the same packed tokens
    assert torch.equal(ar.train.input_ids, prepared.train.input_ids) and ar.train.loss_mask.all()
    with pytest.raises(ConfigError, match="set only one of"):
        prepare_data(load_train_config(None, ["data.corpus=python-stdlib", "data.task=sudoku"]))
    with pytest.raises(ConfigError, match="objective=pretrain"):
        prepare_data(load_train_config(None, ["data.corpus=python-stdlib"]))
    with pytest.raises(DataError, match="unknown corpus"):
        corpus_documents("wikipedia")


def test_corpus_windows_are_seeded_held_out_substrings():
    tokenizer = corpus_tokenizer("python-stdlib")
    windows = corpus_windows(tokenizer, "python-stdlib", 4, context=32, scored=16, seed=3)
    assert windows == corpus_windows(tokenizer, "python-stdlib", 4, context=32, scored=16, seed=3)
    assert windows != corpus_windows(tokenizer, "python-stdlib", 4, context=32, scored=16, seed=4)
    held_out = corpus_documents("python-stdlib", "eval")
    for context, scored in windows:
        assert (len(context), len(scored)) == (32, 16)
        text = tokenizer.decode(context + scored)
        assert any(text in doc for doc in held_out)
    with pytest.raises(DataError, match="lower the context"):
        corpus_windows(tokenizer, "python-stdlib", 1, context=10**9, scored=1, seed=0)
