"""Tests for the 3-SAT task: format, generator, uniqueness, splits, verifier and tokenizer."""

from __future__ import annotations

import random

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.sat import (
    SatTask,
    count_models,
    crawford_auton_clauses,
    format_formula,
    formula_key,
    parse_assignment,
    parse_formula,
    satisfies,
)


def _models(clauses: list[tuple[int, ...]], n: int) -> list[str]:
    """Every satisfying assignment by brute force over the 2^n assignments, as '0'/'1' text."""
    out = []
    for x in range(1 << n):
        bits = [bool(x >> i & 1) for i in range(n)]
        if satisfies(clauses, bits):
            out.append("".join("1" if b else "0" for b in bits))
    return out


@pytest.fixture(scope="module")
def examples5() -> list[Example]:
    return SatTask(5).generate(300, seed=0)


def test_is_a_task() -> None:
    task = SatTask()
    assert isinstance(task, Task)
    assert task.name == "sat"
    assert (task.variables, task.clauses, task.unique) == (5, 41, False)


def test_threshold_counts_and_options() -> None:
    assert [crawford_auton_clauses(n) for n in (5, 7, 9)] == [41, 46, 52]
    assert [SatTask(n).clauses for n in (5, 7, 9)] == [41, 46, 52]
    assert SatTask(7, clauses=30).clauses == 30
    assert SatTask(9).max_answer_tokens == 10
    assert SatTask(9).max_prompt_tokens == 4 * 52 - 1
    for bad in ({"variables": 2}, {"variables": 13}, {"clauses": 0}):
        with pytest.raises(ValueError):
            SatTask(**bad)


def test_format_round_trip() -> None:
    clauses = [(1, -2, 3), (-12, 11, -1)]
    text = format_formula(clauses)
    assert text == "aBc,LkA"
    assert parse_formula(text) == clauses
    for bad in ("aB", "aBcd", "aBc,", "aBm", "a1c", "aBc;Lka"):
        with pytest.raises(ValueError):
            parse_formula(bad)
    assert parse_assignment(" 0110\n", 4) == [False, True, True, False]
    assert parse_assignment("0110", 5) is None
    assert parse_assignment("01 10", 4) is None


@pytest.mark.parametrize(("n", "count"), [(5, 150), (7, 60), (9, 25)])
def test_generated_instances_are_satisfiable(n: int, count: int) -> None:
    task = SatTask(n)
    examples = task.generate(count, seed=1)
    assert len({formula_key(parse_formula(e.prompt)) for e in examples}) == count
    for e in examples:
        clauses = parse_formula(e.prompt)
        assert len(clauses) == task.clauses
        assert len(e.prompt) == task.max_prompt_tokens
        assert all(len({abs(lit) for lit in c}) == 3 for c in clauses)
        assert {abs(lit) for c in clauses for lit in c} == set(range(1, n + 1))
        assert e.meta == {"n": n, "m": task.clauses}
        assert len(e.target) == n and set(e.target) <= {"0", "1"}
        models = _models(clauses, n)
        assert e.target in models  # satisfiable, and the gold is a model (brute force)
        assert task.verify(e, e.target)
        assert len(e.target) + 1 <= task.max_answer_tokens
        assert task.bucket(e) == f"n{n}"


def test_unique_instances_have_one_model() -> None:
    task = SatTask(7, unique=True)
    examples = task.generate(40, seed=2)
    for e in examples:
        clauses = parse_formula(e.prompt)
        assert _models(clauses, 7) == [e.target]
        assert count_models(clauses, 7, limit=5) == 1
    # Without `unique`, some instances have several models.
    plain = SatTask(7).generate(40, seed=2)
    assert any(count_models(parse_formula(e.prompt), 7) > 1 for e in plain)


def test_determinism() -> None:
    a = SatTask(5).generate(50, seed=11)
    b = SatTask(5).generate(50, seed=11)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert SatTask(5).generate(20, seed=11) == a[:20]
    c = SatTask(5).generate(50, seed=12)
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert SatTask(5).generate(0, seed=1) == []


def test_splits_hold_out_formulas_as_clause_sets() -> None:
    task = SatTask(5)
    train, test = task.held_out(300, 50, seed=0)
    assert len(train) == 300 and len(test) == 50
    train_keys = {formula_key(parse_formula(e.prompt)) for e in train}
    test_keys = {formula_key(parse_formula(e.prompt)) for e in test}
    assert len(train_keys) == 300 and len(test_keys) == 50
    assert not train_keys & test_keys
    again = task.held_out(300, 50, seed=0)
    assert again == (train, test)
    # Few distinct formulas exist over 3 variables: duplicates (as clause sets) get skipped.
    small = SatTask(3, clauses=4)
    tr, te = small.held_out(60, 20, seed=0)
    keys = [formula_key(parse_formula(e.prompt)) for e in tr + te]
    assert len(set(keys)) == 80


def test_too_few_distinct_formulas_raises() -> None:
    # One clause over 3 variables: only the 8 sign patterns of {a, b, c} as clause sets.
    task = SatTask(3, clauses=1)
    assert len(task.generate(8, seed=0)) == 8
    with pytest.raises(ValueError, match="distinct formulas"):
        task.generate(9, seed=0)
    with pytest.raises(ValueError, match="train / "):
        task.held_out(5, 4, seed=0)


def _breaking_flip(clauses: list[tuple[int, ...]], target: str) -> str | None:
    """The target with one variable flipped so that some clause fails, if such a flip exists."""
    for i in range(len(target)):
        flipped = target[:i] + ("1" if target[i] == "0" else "0") + target[i + 1 :]
        if not satisfies(clauses, [ch == "1" for ch in flipped]):
            return flipped
    return None


def test_verifier_rejects_corruptions(examples5: list[Example]) -> None:
    task = SatTask(5)
    broken = 0
    for e in examples5:
        t = e.target
        assert task.verify(e, t)
        assert task.verify(e, f"  {t}\n")
        flipped = _breaking_flip(parse_formula(e.prompt), t)
        if flipped is not None:
            broken += 1
            assert not task.verify(e, flipped)
        assert not task.verify(e, t[:-1])
        assert not task.verify(e, t + "0")
        assert not task.verify(e, t + "1")
        assert not task.verify(e, "")
        assert not task.verify(e, "2" + t[1:])
        assert not task.verify(e, t[:2] + "x" + t[3:])
        assert not task.verify(e, t[:2] + " " + t[3:])
        assert not task.verify(e, " ".join(t))  # MGDM's spaced form is not this format
    assert broken > 250  # near the threshold almost every model has a critical variable


def test_verifier_accepts_any_model(examples5: list[Example]) -> None:
    task = SatTask(5)
    others = 0
    for e in examples5[:100]:
        clauses = parse_formula(e.prompt)
        models = _models(clauses, 5)
        for m in models:
            assert task.verify(e, m)
            assert task.paper_metric(e, m) == (m == e.target)
        for x in range(32):
            a = format(x, "05b")[::-1]
            assert task.verify(e, a) == (a in models)
        others += len(models) - 1
    assert others > 0


def test_answer_of_and_paper_metric(examples5: list[Example]) -> None:
    task = SatTask(5)
    for e in examples5[:50]:
        assert task.answer_of(e.target) == e.target
        assert task.answer_of(f" {e.target}\n") == e.target
        assert task.paper_metric(e, e.target)
        assert task.paper_metric(e, " ".join(e.target))
    assert task.answer_of("0101") is None
    assert task.answer_of("010101") is None
    assert task.answer_of("01a01") is None
    assert task.answer_of("") is None


def test_tokenizer_round_trip(examples5: list[Example]) -> None:
    task = SatTask(12)
    tok = task.tokenizer()
    texts = [e.prompt for e in examples5[:20]] + [e.target for e in examples5[:20]]
    texts += [e.prompt for e in task.generate(5, seed=0)] + ["aBc,LkA", "101101011100"]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text)
        assert UNK_ID not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
    # One tokenizer for every n: the same vocabulary.
    assert SatTask(5).tokenizer().get_vocab() == tok.get_vocab()


def test_generation_is_seeded_by_the_rng_only() -> None:
    task = SatTask(9, unique=True)
    c1, t1 = task.make_instance(random.Random(4))
    c2, t2 = task.make_instance(random.Random(4))
    assert (c1, t1) == (c2, t2)
    assert _models(c1, 9) == [t1]
