import pytest

from dlm.data import (
    BatchOrder,
    DataError,
    encode_pairs,
    pack_documents,
    read_jsonl,
    read_text_documents,
    write_jsonl,
)


def test_encode_pairs_layout(char_tokenizer):
    data = encode_pairs(char_tokenizer, ["12", "345"], ["ab", "c"], seq_len=8)
    sep, eos, pad = (
        char_tokenizer.sep_token_id,
        char_tokenizer.eos_token_id,
        char_tokenizer.pad_token_id,
    )
    ids = data.input_ids.tolist()
    enc = lambda s: char_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    assert ids[0] == enc("12") + [sep] + enc("ab") + [eos] + [pad] * 2
    assert ids[1] == enc("345") + [sep] + enc("c") + [eos] + [pad] * 2
    assert data.noisable[0].tolist() == [False] * 3 + [True] * 5
    assert data.loss_mask[0].tolist() == [False] * 3 + [True] * 3 + [False] * 2
    assert data.attention_mask is None


def test_encode_pairs_too_long_and_empty(char_tokenizer):
    with pytest.raises(DataError, match="needs 7 tokens but data.seq_len is 5"):
        encode_pairs(char_tokenizer, ["1234"], ["a"], seq_len=5)
    with pytest.raises(DataError, match="empty"):
        encode_pairs(char_tokenizer, [], [])


def test_pack_documents(char_tokenizer):
    data = pack_documents(char_tokenizer, ["1234", "56", "789", "0"], seq_len=4)
    eos = char_tokenizer.eos_token_id
    flat = data.input_ids.flatten().tolist()
    enc = lambda s: char_tokenizer.encode(s, add_special_tokens=False)  # noqa: E731
    assert flat == (enc("1234") + [eos] + enc("56") + [eos] + enc("789") + [eos])[:12]
    assert data.noisable.all()
    with pytest.raises(DataError, match="fewer than one sequence"):
        pack_documents(char_tokenizer, ["1"], seq_len=50)


def test_batch_order_is_deterministic_resumable_and_sharded():
    a = BatchOrder(10, 3, seed=1)
    seen = [a.next_indices().tolist() for _ in range(5)]
    b = BatchOrder(10, 3, seed=1)
    for _ in range(2):
        b.next_indices()
    c = BatchOrder(10, 3, seed=1)
    c.load_state_dict(b.state_dict())
    assert [c.next_indices().tolist() for _ in range(3)] == seen[2:]
    assert sorted(sum(seen[:3], [])) == sorted(set(sum(seen[:3], [])))  # no repeats within an epoch
    r0 = BatchOrder(12, 2, seed=0, num_processes=2, process_index=0)
    r1 = BatchOrder(12, 2, seed=0, num_processes=2, process_index=1)
    for _ in range(3):
        i0, i1 = r0.next_indices(), r1.next_indices()
        assert len(i0) == len(i1) == 2 and not set(i0.tolist()) & set(i1.tolist())


def test_jsonl_errors_name_the_file_and_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl is empty"):
        read_jsonl(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "1"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2 is not valid JSON"):
        read_jsonl(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_jsonl(tmp_path / "missing.jsonl")
    good = tmp_path / "good.jsonl"
    write_jsonl(good, [{"text": "a"}, {"text": "b"}])
    assert read_text_documents(good) == ["a", "b"]
    with pytest.raises(DataError, match="set data.text_field"):
        read_text_documents(good, "body")
