"""``convert`` / ``run_convert``: published checkpoints rewritten as plain dlm checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast, Qwen2Tokenizer

from dlm.checkpoints import convert, load_published
from dlm.cli.convert import run_convert
from dlm.models import DiffusionLM, NotADlmCheckpointError


def _word_tokenizer(size: int) -> PreTrainedTokenizerFast:
    vocab = {f"t{i}": i for i in range(size)}
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), unk_token="t0"
    )


def _logits(model: DiffusionLM, vocab: int) -> torch.Tensor:
    ids = torch.randint(0, vocab, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(ids)


def test_llada_converts_with_its_tokenizer_and_mask_token(tmp_path, layouts, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    layouts.write_llada(
        src, embedding_size=64, vocab_size=64, mask_token_id=60, pad_token_id=1, eos_token_id=2
    )
    _word_tokenizer(64).save_pretrained(src)
    assert run_convert(src, dst) == 0
    out = capsys.readouterr().out
    assert f"read {src} as a llada checkpoint: LlamaForCausalLM" in out
    assert "mask id 60, shift off, bidirectional attention" in out
    assert f"wrote the dlm checkpoint {dst} with the tokenizer" in out
    dlm_config = json.loads((dst / "dlm_config.json").read_text())
    assert (dlm_config["mask_token_id"], dlm_config["shift"]) == (60, False)
    assert json.loads((dst / "config.json").read_text())["model_type"] == "llama"
    converted = DiffusionLM.from_pretrained(dst)
    torch.testing.assert_close(_logits(converted, 64), _logits(load_published(src), 64))
    tokenizer = AutoTokenizer.from_pretrained(dst)
    assert (tokenizer.mask_token, tokenizer.mask_token_id) == ("t60", 60)
    assert not list(tmp_path.glob(".dst*"))  # the temporary directory is gone


def test_dream_remote_code_tokenizer_is_read_with_the_builtin_class(tmp_path, layouts):
    src, dst = tmp_path / "src", tmp_path / "dst"
    layouts.write_dream(
        src, vocab=64, mask_token_id=5, pad_token_id=0, bos_token_id=0, eos_token_id=0
    )
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3, "c": 4, "<|mask|>": 5}
    Qwen2Tokenizer(vocab=vocab, merges=[("a", "b")]).save_pretrained(src)
    config = json.loads((src / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "DreamTokenizer"
    config["auto_map"] = {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]}
    (src / "tokenizer_config.json").write_text(json.dumps(config))
    result = convert(src, dst)
    assert (result.format, result.architecture, result.tokenizer) == (
        "dream",
        "Qwen2ForCausalLM",
        True,
    )
    assert (result.mask_token_id, result.shift) == (5, True)
    tokenizer = AutoTokenizer.from_pretrained(dst, trust_remote_code=False)
    assert tokenizer.mask_token_id == 5
    assert tokenizer("abab").input_ids == [3, 3]
    # the published sampler defaults survive the conversion (dlm_config.json "generation")
    published = load_published(src).generation_defaults
    assert published["steps"] == 512 and published["policy"] == "random"
    assert DiffusionLM.from_pretrained(dst).generation_defaults == published


def test_without_a_tokenizer_only_the_model_is_written(tmp_path, layouts, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    layouts.write_diffullama(src, "wrapper", mask_token_id=811)
    assert run_convert(src, dst) == 0
    assert "(the source has no tokenizer)" in capsys.readouterr().out
    assert not (dst / "tokenizer_config.json").exists()
    torch.testing.assert_close(
        _logits(DiffusionLM.from_pretrained(dst), 32000), _logits(load_published(src), 32000)
    )


def test_refuses_a_non_empty_destination_and_an_unknown_source(tmp_path, layouts):
    src, dst = tmp_path / "src", tmp_path / "dst"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        convert(src, dst)
    src.mkdir()
    with pytest.raises(NotADlmCheckpointError, match="matches no published format"):
        convert(src, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert [p.name for p in dst.iterdir()] == ["keep.txt"]


def test_dlm_convert_command_line(tmp_path, layouts, capsys):
    from dlm.cli.main import main

    src, dst = tmp_path / "src", tmp_path / "dst"
    layouts.write_llada(
        src, embedding_size=64, vocab_size=64, mask_token_id=60, pad_token_id=1, eos_token_id=2
    )
    _word_tokenizer(64).save_pretrained(src)
    assert main(["convert", str(src), str(dst)]) == 0
    assert "as a llada checkpoint" in capsys.readouterr().out
    assert json.loads((dst / "dlm_config.json").read_text())["mask_token_id"] == 60
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert", str(empty), str(tmp_path / "out")]) == 2
    assert "is not a dlm checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
