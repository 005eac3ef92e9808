"""Tests for the long-addition task: format, exact sums, carry chains, splits, tokenizer."""

from __future__ import annotations

import random

import pytest

from dlm.errors import DlmUserError
from dlm.tasks import get_task
from dlm.tasks.addition import AdditionTask, add_reversed, longest_carry_chain
from dlm.tasks.base import Example, Task


def test_format_matches_the_docstring_example() -> None:
    assert add_reversed("3210", "9890") == "21110"  # 123 + 989 = 1112
    task = AdditionTask(digits=4)
    assert task.verify(Example("3210+9890", ""), "21110")
    assert task.max_answer_tokens == 6


def test_sums_are_exact_for_random_operands() -> None:
    rng = random.Random(0)
    for _ in range(200):
        a, b = rng.randrange(10**30), rng.randrange(10**30)
        a_rev, b_rev = str(a).zfill(30)[::-1], str(b).zfill(30)[::-1]
        assert int(add_reversed(a_rev, b_rev)[::-1]) == a + b
        assert len(add_reversed(a_rev, b_rev)) == 31


def test_longest_carry_chain() -> None:
    # 0999 + 0001 (reversed "9990" + "1000"): the carry from 9+1 passes through two 9-sums.
    assert longest_carry_chain("9990", "1000") == 2
    assert longest_carry_chain("1234", "1234") == 0
    # A 9-sum with no carry coming in is not a chain.
    assert longest_carry_chain("45", "54") == 0
    assert longest_carry_chain("545", "454") == 0
    assert longest_carry_chain("545", "554") == 2
    assert longest_carry_chain("945", "154") == 2


def test_generation_is_seeded_distinct_and_verified() -> None:
    task = get_task("addition", digits=12)
    assert isinstance(task, Task)
    first = task.generate(300, seed=3)
    assert first == task.generate(300, seed=3)
    assert first != task.generate(300, seed=4)
    assert len({e.prompt for e in first}) == 300
    for example in first:
        a, b = example.prompt.split("+")
        assert len(a) == len(b) == 12
        assert len(example.target) == 13
        assert task.verify(example, example.target)
        assert task.verify(example, f"  {example.target}\n")
        assert task.digit_accuracy(example, example.target) == 1.0
        assert task.answer_of(example.target) == example.target
    buckets = {task.bucket(e) for e in first}
    assert {"chain0", "chain1"} <= buckets


def test_verifier_rejects_corrupted_answers() -> None:
    task = AdditionTask(digits=10)
    for example in task.generate(50, seed=1):
        gold = example.target
        wrong = str((int(gold[0]) + 1) % 10) + gold[1:]
        assert not task.verify(example, wrong)
        assert task.digit_accuracy(example, wrong) == pytest.approx(10 / 11)
        assert not task.verify(example, gold[:-1])
        assert not task.verify(example, gold + "0")
        assert task.answer_of("12+3") is None


def test_splits_are_disjoint() -> None:
    task = AdditionTask(digits=6)
    train, test = task.held_out(500, 50, seed=0)
    assert len(train) == 500 and len(test) == 50
    assert not {e.prompt for e in train} & {e.prompt for e in test}


def test_tokenizer_round_trips() -> None:
    task = AdditionTask(digits=8)
    tok = task.tokenizer()
    for example in task.generate(20, seed=0):
        for text in (example.prompt, example.target):
            ids = tok(text)["input_ids"]
            assert len(ids) == len(text)
            assert tok.unk_token_id not in ids
            assert tok.decode(ids, skip_special_tokens=True) == text


def test_bad_options_and_prompts_are_reported() -> None:
    with pytest.raises(ValueError, match="digits"):
        AdditionTask(digits=0)
    with pytest.raises(ValueError, match="only 100 exist"):
        AdditionTask(digits=1).generate(80, seed=0)
    with pytest.raises(ValueError, match="joined by"):
        AdditionTask(digits=3).verify(Example("123-456", ""), "0000")


def test_mixed_lengths_cover_the_range_and_verify_by_their_own_length():
    task = AdditionTask(digits=6, min_digits=2)
    train, test = task.held_out(400, 100, seed=0)
    lengths = {len(e.prompt.partition("+")[0]) for e in train + test}
    assert lengths == {2, 3, 4, 5, 6}
    for e in train[:50]:
        a, _, b = e.prompt.partition("+")
        assert len(a) == len(b) and len(e.target) == len(a) + 1
        assert task.verify(e, e.target) and task.bucket(e) == f"d{len(a)}"
        assert not task.verify(e, e.target[:-1])
    assert task.max_answer_tokens == 8
    with pytest.raises(DlmUserError, match="min_digits"):
        AdditionTask(digits=4, min_digits=5)
