"""Tests for the boolean-expression task: format, evaluation steps, splits, verifiers."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.boolean import (
    ALPHABET,
    BooleanTask,
    answer_of,
    evaluate,
    format_expression,
    join_thoughts,
    parse_expression,
    parse_prompt,
    steps,
    thoughts,
)

STEP = re.compile(r"(![a-j01]|[a-j01][&|^][a-j01])=[01]")


def _python_value(prompt: str) -> int:
    """An independent evaluator: Python's bitwise operators, "!" as "~", low bit kept."""
    head, expr = prompt.split(":")
    values = {k: int(v) for k, v in (item.split("=") for item in head.split(","))}
    return eval(expr.replace("!", "~"), {}, values) & 1  # our own generated strings


def test_is_a_task() -> None:
    task = BooleanTask()
    assert isinstance(task, Task)
    assert task.name == "boolean"
    assert (task.depth, task.variables, task.cot) == (3, 4, True)


def test_docstring_example() -> None:
    task = BooleanTask(depth=2, variables=3)
    ex = task.example_for(parse_expression("(a&b)|!c"), {"a": 1, "b": 0, "c": 1})
    assert ex.prompt == "a=1,b=0,c=1:(a&b)|!c"
    assert ex.target == "a&b=0,!c=0,0|0=0 #### 0"
    assert ex.meta == {"ops": 3, "binary_ops": 2, "depth": 2, "value": 0}
    assert task.bucket(ex) == "3"
    assert thoughts(ex.target) == ["a&b=0", "!c=0", "0|0=0", "#### 0"]
    no_cot = BooleanTask(depth=2, variables=3, cot=False)
    assert no_cot.example_for(parse_expression("(a&b)|!c"), {"a": 1, "b": 0, "c": 1}).target == (
        "#### 0"
    )
    # Post-order, left before right, negation of a computed value written as its value.
    values, node = parse_prompt("a=1,b=1:!(a^!b)&b")
    assert steps(node, values) == (0, ["!b=0", "a^0=1", "!1=0", "0&b=0"])


def test_parse_format_round_trip_and_errors() -> None:
    for text in ("a&b", "!a", "!(a|b)^(c&!d)", "((a&b)|c)^!(d^e)", "a"):
        assert format_expression(parse_expression(text)) == text
    for bad in ("", "a&", "(a&b", "a&b&c", "!!a", "(a)", "a&x", "a&b)", "a & b"):
        with pytest.raises(ValueError):
            parse_expression(bad)
    for bad in ("a&b", "a=2:a&a", "a=1,a=0:a&a", "a=1:a&b", "A=1:A"):
        with pytest.raises(ValueError):
            parse_prompt(bad)


@pytest.mark.parametrize(("depth", "variables"), [(1, 2), (2, 3), (3, 4), (4, 10)])
def test_generated_examples_are_consistent(depth: int, variables: int) -> None:
    task = BooleanTask(depth=depth, variables=variables)
    examples = task.generate(200, seed=depth)
    for ex in examples:
        head, expr = ex.prompt.split(":")
        assert head == ",".join(
            f"{k}={ex.prompt[4 * i + 2]}" for i, k in enumerate("abcdefghij"[:variables])
        )
        values, node = parse_prompt(ex.prompt)
        assert format_expression(node) == expr
        assert "!!" not in expr
        value = _python_value(ex.prompt)
        assert evaluate(node, values) == value == ex.meta["value"]
        parts = thoughts(ex.target)
        assert parts[-1] == f"#### {value}"
        assert all(STEP.fullmatch(p) for p in parts[:-1])
        assert (
            len(parts) - 1 == ex.meta["ops"] == expr.count("!") + sum(expr.count(o) for o in "&|^")
        )
        assert 1 <= ex.meta["binary_ops"] <= 2**depth - 1
        assert 1 <= ex.meta["depth"] <= depth
        assert task.bucket(ex) == str(ex.meta["ops"])
        assert len(ex.target) + 1 <= task.max_answer_tokens
    assert len({e.meta["binary_ops"] for e in examples}) == 2**depth - 1  # every count drawn
    assert set(Counter(e.meta["value"] for e in examples)) == {0, 1}


def test_max_answer_tokens() -> None:
    assert BooleanTask(depth=3, cot=False).max_answer_tokens == len("#### 0") + 1
    # depth 1: "!(!a&!b)" -> "!a=v,!b=v,v&v=v,!v=v #### v" is the longest target.
    longest = BooleanTask(depth=1, variables=2).example_for(
        parse_expression("!(!a&!b)"), {"a": 0, "b": 1}
    )
    assert BooleanTask(depth=1).max_answer_tokens == len(longest.target) + 1
    assert BooleanTask(depth=2, neg_prob=0.0).max_answer_tokens == 3 * 5 + 2 + 7 + 1


def test_thoughts_round_trip() -> None:
    for cot in (True, False):
        for ex in BooleanTask(depth=3, cot=cot).generate(100, seed=1):
            parts = BooleanTask.thoughts(ex.target)
            assert join_thoughts(parts) == ex.target == BooleanTask.join_thoughts(parts)
            assert len(parts) == (ex.meta["ops"] + 1 if cot else 1)
            for k in range(1, len(parts)):  # a multi-pass prompt shows the start of the target
                assert ex.target.startswith(join_thoughts(parts[:k]))
                assert ex.target[len(join_thoughts(parts[:k]))] in ", "
    assert join_thoughts(("a&b=0", "!c=0", "#### 0")) == "a&b=0,!c=0 #### 0"
    with pytest.raises(ValueError):
        thoughts("a&b=0")
    assert join_thoughts([]) == ""


def test_answer_of() -> None:
    assert answer_of("a&b=0,!c=0,0|0=0 #### 0") == "0"
    assert BooleanTask.answer_of("#### 1 \n") == "1"
    assert answer_of("#### 0 #### 1") == "1"
    assert answer_of("a&b=0") is None
    assert answer_of("a&b=0 #### ") is None


def test_determinism() -> None:
    task = BooleanTask()
    a = task.generate(300, seed=7)
    assert [e.to_json() for e in a] == [e.to_json() for e in BooleanTask().generate(300, 7)]
    assert [e.prompt for e in task.generate(30, seed=7)] == [e.prompt for e in a[:30]]
    assert [e.prompt for e in task.generate(300, seed=8)] != [e.prompt for e in a]
    assert len({e.prompt for e in a}) == 300
    assert task.generate(0, seed=0) == []
    assert BooleanTask(neg_prob=0.5).generate(20, 7) != BooleanTask().generate(20, 7)


def test_splits_hold_out_expressions() -> None:
    task = BooleanTask(depth=2, variables=2)  # a small space: expressions repeat often
    train, test = task.held_out(800, 100, seed=0)
    assert len(train) == 800 and len(test) == 100
    expr = lambda e: e.prompt.split(":")[1]  # noqa: E731
    assert not {expr(e) for e in train} & {expr(e) for e in test}
    prompts = [e.prompt for e in train + test]
    assert len(set(prompts)) == len(prompts)
    again = task.held_out(800, 100, seed=0)
    assert [e.prompt for e in again[0]] == [e.prompt for e in train]
    assert [e.prompt for e in again[1]] == [e.prompt for e in test]
    with pytest.raises(ValueError, match="distinct"):
        BooleanTask(depth=1, variables=1).generate(1000, seed=0)
    with pytest.raises(ValueError, match="train"):
        BooleanTask(depth=1, variables=1).held_out(100, 20, seed=0)


def test_verifier_accepts_gold_rejects_corruptions() -> None:
    task = BooleanTask(depth=3)
    for ex in task.generate(300, seed=2):
        t = ex.target
        value = ex.meta["value"]
        parts = thoughts(t)
        assert task.verify(ex, t)
        assert task.verify(ex, f" {t}\n")
        assert task.verify(ex, f"#### {value}")  # only the answer is checked
        assert task.verify_rationale(ex, t)
        flipped = join_thoughts([*parts[:-1], f"#### {1 - value}"])
        assert not task.verify(ex, flipped)
        assert not task.verify_rationale(ex, flipped)
        for bad in ("", t.replace(" #### ", " "), f"#### {value}{value}", "#### 2", "####"):
            assert not task.verify(ex, bad)
        # A wrong step value: the answer still passes verify, not verify_rationale.
        step = parts[0]
        bad_step = step[:-1] + str(1 - int(step[-1]))
        assert task.verify(ex, join_thoughts([bad_step, *parts[1:]]))
        assert not task.verify_rationale(ex, join_thoughts([bad_step, *parts[1:]]))
        # A missing step, steps out of order, answer only.
        if len(parts) > 2:
            assert not task.verify_rationale(ex, join_thoughts(parts[1:]))
            if parts[0] != parts[1]:
                swapped = [parts[1], parts[0], *parts[2:]]
                assert not task.verify_rationale(ex, join_thoughts(swapped))
        assert not task.verify_rationale(ex, f"#### {value}")


def test_verifier_reads_prompt_not_target() -> None:
    task = BooleanTask()
    ex = task.generate(1, seed=0)[0]
    wrong = Example(ex.prompt, f"#### {1 - ex.meta['value']}", {})
    assert task.verify(wrong, ex.target)
    assert not task.verify(wrong, wrong.target)


def test_tokenizer_round_trip() -> None:
    task = BooleanTask(depth=4, variables=10)
    tok = task.tokenizer()
    assert len(tok) == 5 + len(ALPHABET) == 28
    for ex in task.generate(30, seed=0) + BooleanTask(cot=False).generate(5, 0):
        for text in (ex.prompt, ex.target):
            ids = tok(text)["input_ids"]
            assert UNK_ID not in ids
            assert tok.decode(ids, skip_special_tokens=True) == text


def test_options_validated() -> None:
    for bad in (0, 7, "3", True):
        with pytest.raises(ValueError, match="depth"):
            BooleanTask(depth=bad)  # type: ignore[arg-type]
    for bad in (0, 11, 2.0):
        with pytest.raises(ValueError, match="variables"):
            BooleanTask(variables=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cot"):
        BooleanTask(cot=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neg_prob"):
        BooleanTask(neg_prob=1.5)
    with pytest.raises(ValueError):
        BooleanTask().generate(-3, seed=0)
