"""Tests for the character-level tokenizer shared by the puzzle tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from dlm.data.char_tokenizer import SPECIAL_TOKENS, build_char_tokenizer, char_vocab

DIGITS = "0123456789"
COUNTDOWN = "0123456789*+-/=,"


@pytest.fixture(scope="module")
def digits_tok() -> PreTrainedTokenizerFast:
    return build_char_tokenizer(DIGITS)


def test_ids_follow_mgdm_order(digits_tok: PreTrainedTokenizerFast) -> None:
    assert SPECIAL_TOKENS == ("[PAD]", "[SEP]", "[MASK]", "[EOS]", "[UNK]")
    assert digits_tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert digits_tok.convert_tokens_to_ids(list(DIGITS)) == list(range(5, 15))
    assert len(digits_tok) == 15
    assert (
        digits_tok.pad_token_id,
        digits_tok.sep_token_id,
        digits_tok.mask_token_id,
        digits_tok.eos_token_id,
        digits_tok.unk_token_id,
    ) == (0, 1, 2, 3, 4)
    assert (digits_tok.pad_token, digits_tok.sep_token, digits_tok.mask_token) == (
        "[PAD]",
        "[SEP]",
        "[MASK]",
    )
    assert (digits_tok.eos_token, digits_tok.unk_token) == ("[EOS]", "[UNK]")
    assert digits_tok.bos_token is None


def test_mgdm_countdown_alphabet_ids() -> None:
    tok = build_char_tokenizer(COUNTDOWN + "abcdefghij")
    assert len(tok) == 31  # MGDM's vocab_size
    assert tok("86,28")["input_ids"] == [13, 11, 20, 7, 13]


def test_one_token_per_character_no_added_specials(digits_tok: PreTrainedTokenizerFast) -> None:
    ids = digits_tok("1203")["input_ids"]
    assert ids == [6, 7, 5, 8]
    assert digits_tok("1203", add_special_tokens=True)["input_ids"] == [6, 7, 5, 8]
    text = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
    assert len(digits_tok(text)["input_ids"]) == 81


def test_round_trip_without_spaces(digits_tok: PreTrainedTokenizerFast) -> None:
    for text in ["0", "1203", "9" * 81, "0123456789" * 3]:
        ids = digits_tok(text)["input_ids"]
        assert digits_tok.decode(ids) == text
        assert digits_tok.decode(ids, skip_special_tokens=True) == text
    tok = build_char_tokenizer(COUNTDOWN)
    text = "86+28=114,31-13=18,114-18=96"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_special_tokens_in_text_and_skipping(digits_tok: PreTrainedTokenizerFast) -> None:
    ids = digits_tok("12[SEP]34[EOS][PAD][PAD]")["input_ids"]
    assert ids == [6, 7, 1, 8, 9, 3, 0, 0]
    assert digits_tok.decode(ids) == "12[SEP]34[EOS][PAD][PAD]"
    assert digits_tok.decode(ids, skip_special_tokens=True) == "1234"
    assert digits_tok.decode([6, 2, 2, 7], skip_special_tokens=True) == "12"


def test_unknown_characters_map_to_unk(digits_tok: PreTrainedTokenizerFast) -> None:
    assert digits_tok("1 a2é")["input_ids"] == [6, 4, 4, 7, 4]
    # Like MGDM's space separators, unknowns vanish when special tokens are skipped.
    assert digits_tok.decode(digits_tok("1 2")["input_ids"], skip_special_tokens=True) == "12"


def test_space_and_newline_in_alphabet_are_kept() -> None:
    tok = build_char_tokenizer("01 \n")
    text = "0 1\n10  1"
    ids = tok(text)["input_ids"]
    assert len(ids) == len(text) and 4 not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_padding_uses_pad_id(digits_tok: PreTrainedTokenizerFast) -> None:
    batch = digits_tok(["123", "4"], padding=True)
    assert batch["input_ids"] == [[6, 7, 8], [9, 0, 0]]
    assert batch["attention_mask"] == [[1, 1, 1], [1, 0, 0]]


def test_duplicate_alphabet_rejected() -> None:
    with pytest.raises(ValueError, match="repeats"):
        char_vocab("0120")


@pytest.mark.parametrize("loader", [PreTrainedTokenizerFast, AutoTokenizer])
def test_save_load_round_trip(tmp_path: Path, loader: type) -> None:
    tok = build_char_tokenizer(COUNTDOWN)
    tok.save_pretrained(tmp_path)
    loaded = loader.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab()
    for attr in ("pad_token", "sep_token", "mask_token", "eos_token", "unk_token", "bos_token"):
        assert getattr(loaded, attr) == getattr(tok, attr)
        assert getattr(loaded, attr + "_id") == getattr(tok, attr + "_id")
    for text in ["86,28,13,31,96", "86+28=114[SEP]1 x", "[MASK][MASK]3[EOS][PAD]"]:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids
        assert loaded.decode(ids) == tok.decode(ids)
        assert loaded.decode(ids, skip_special_tokens=True) == tok.decode(
            ids, skip_special_tokens=True
        )
    assert loaded.decode(loaded("96-18=78")["input_ids"]) == "96-18=78"
