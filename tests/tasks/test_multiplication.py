"""Tests for the multiplication task: Implicit-CoT format, thoughts, splits, verifiers."""

from __future__ import annotations

import random

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.multiplication import (
    ALPHABET,
    MultiplicationTask,
    answer_of,
    format_prompt,
    join_thoughts,
    parse_prompt,
    rationale_thoughts,
    thoughts,
)

# Lines of the Implicit-CoT BIG-bench test files (data/{4_by_4,5_by_5}_mult), as (a, b, line).
REFERENCE = [
    (
        3719,
        3349,
        "9 1 7 3 * 9 4 3 3||1 7 4 3 3 + 0 6 7 8 4 1 ( 1 3 2 2 8 1 ) + 0 0 7 5 1 1 1 "
        "( 1 3 9 7 9 2 1 ) + 0 0 0 7 5 1 1 1 #### 1 3 9 4 5 4 2 1",
    ),
    (
        2701,
        2044,  # a zero digit in b: an all-zero partial product
        "1 0 7 2 * 4 4 0 2||4 0 8 0 1 + 0 4 0 8 0 1 ( 4 4 8 8 1 1 ) + 0 0 0 0 0 0 0 "
        "( 4 4 8 8 1 1 0 ) + 0 0 0 2 0 4 5 0 #### 4 4 8 0 2 5 5 0",
    ),
    (
        8200,
        2275,  # small partial products keep their padding zeros
        "0 0 2 8 * 5 7 2 2||0 0 0 1 4 + 0 0 0 4 7 5 ( 0 0 0 5 1 6 ) + 0 0 0 0 4 6 1 "
        "( 0 0 0 5 5 2 2 ) + 0 0 0 0 0 4 6 1 #### 0 0 0 5 5 6 8 1",
    ),
    (
        90497,
        10034,
        "7 9 4 0 9 * 4 3 0 0 1||8 8 9 1 6 3 + 0 1 9 4 1 7 2 ( 8 9 8 6 7 0 3 ) + "
        "0 0 0 0 0 0 0 0 ( 8 9 8 6 7 0 3 0 ) + 0 0 0 0 0 0 0 0 0 ( 8 9 8 6 7 0 3 0 0 ) + "
        "0 0 0 0 7 9 4 0 9 0 #### 8 9 8 6 4 0 8 0 9 0",
    ),
]


def _rev(text: str) -> int:
    return int(text.replace(" ", "")[::-1])


def test_is_a_task() -> None:
    task = MultiplicationTask()
    assert isinstance(task, Task)
    assert task.name == "multiplication"
    assert (task.digits, task.cot) == (4, True)


@pytest.mark.parametrize(("a", "b", "line"), REFERENCE)
def test_reproduces_implicit_cot_lines(a: int, b: int, line: str) -> None:
    prompt, target = line.split("||")
    digits = len(str(a))
    task = MultiplicationTask(digits)
    ex = task.make_example(a, b)
    assert ex.prompt == prompt == format_prompt(a, b, digits)
    assert ex.target == target
    assert ex.meta == {"a": a, "b": b, "product": a * b}
    assert parse_prompt(prompt) == (a, b, digits)
    assert task.max_answer_tokens == len(target) + 1
    assert MultiplicationTask(digits, cot=False).make_example(a, b).target == (
        "#### " + target.split(" #### ")[1]
    )


def test_reference_example_worked_out() -> None:
    parts = thoughts(REFERENCE[0][2].split("||")[1])
    assert _rev(parts[0]) == 3719 * 9 == 33471
    assert _rev(parts[1].split(" ( ")[0]) == 3719 * 4 * 10 == 148760
    assert _rev(parts[1].split(" ( ")[1].rstrip(" )")) == 33471 + 148760 == 182231
    assert _rev(parts[-1].removeprefix("#### ")) == 3719 * 3349


@pytest.mark.parametrize("digits", [2, 3, 4, 5, 9])
def test_rationale_arithmetic(digits: int) -> None:
    task = MultiplicationTask(digits)
    examples = task.generate(60, seed=digits)
    lengths = set()
    for ex in examples:
        a, b = ex.meta["a"], ex.meta["b"]
        assert 10 ** (digits - 1) <= a < 10**digits and 10 ** (digits - 1) <= b < 10**digits
        assert ex.prompt.split(" * ")[0][-1] != "0"  # most-significant digit (last) nonzero
        parts = thoughts(ex.target)
        assert len(parts) == digits + 1
        running = 0
        for j, part in enumerate(parts[:-1]):
            product, _, rest = part.partition(" ( ")
            assert len(product.split(" ")) == digits + 1 + j
            running += _rev(product)
            assert _rev(product) == a * int(str(b)[::-1][j]) * 10**j
            if 0 < j < digits - 1:
                assert rest.endswith(" )") and _rev(rest[:-2]) == running
                assert len(rest[:-2].split(" ")) == digits + 1 + j
            else:
                assert rest == ""
        assert running == a * b
        assert answer_of(ex.target) == " ".join(str(a * b).zfill(2 * digits)[::-1])
        lengths.add(len(ex.target))
    assert lengths == {task.max_answer_tokens - 1}


def test_thoughts_round_trip() -> None:
    for cot in (True, False):
        for ex in MultiplicationTask(5, cot=cot).generate(50, seed=1):
            parts = MultiplicationTask.thoughts(ex.target)
            assert parts[-1].startswith("#### ")
            assert len(parts) == (6 if cot else 1)
            assert join_thoughts(parts) == ex.target
            assert MultiplicationTask.join_thoughts(parts) == ex.target
            for k in range(1, len(parts)):  # a multi-pass prompt shows the start of the target
                assert ex.target.startswith(join_thoughts(parts[:k]) + (" + " if k < 5 else " "))
    assert join_thoughts(("1 2", "3 4", "#### 5")) == "1 2 + 3 4 #### 5"
    with pytest.raises(ValueError):
        thoughts("1 2 3")
    assert join_thoughts([]) == ""


def test_answer_of() -> None:
    target = REFERENCE[0][2].split("||")[1]
    assert answer_of(target) == "1 3 9 4 5 4 2 1"
    assert MultiplicationTask.answer_of("#### 1 2 \n") == "1 2"
    assert answer_of("#### 1 #### 2 3") == "2 3"
    assert answer_of("1 7 4 3 3") is None
    assert answer_of("1 7 ####   ") is None


def test_determinism() -> None:
    task = MultiplicationTask(4)
    a = task.generate(200, seed=3)
    assert [e.to_json() for e in a] == [e.to_json() for e in MultiplicationTask(4).generate(200, 3)]
    assert [e.prompt for e in task.generate(50, seed=3)] == [e.prompt for e in a[:50]]
    assert [e.prompt for e in task.generate(200, seed=4)] != [e.prompt for e in a]
    assert len({e.prompt for e in a}) == 200
    assert task.generate(0, seed=0) == []


def test_splits_hold_out_operand_pairs() -> None:
    task = MultiplicationTask(2)  # 8100 ordered pairs: collisions are common
    train, test = task.held_out(3000, 500, seed=0)
    assert len(train) == 3000 and len(test) == 500
    key = lambda e: frozenset((e.meta["a"], e.meta["b"]))  # noqa: E731
    assert not {key(e) for e in train} & {key(e) for e in test}
    prompts = [e.prompt for e in train + test]
    assert len(set(prompts)) == len(prompts)
    again = task.held_out(3000, 500, seed=0)
    assert [e.prompt for e in again[0]] == [e.prompt for e in train]
    assert [e.prompt for e in again[1]] == [e.prompt for e in test]
    with pytest.raises(ValueError, match="operand pairs"):
        task.held_out(8000, 500, seed=0)
    with pytest.raises(ValueError):
        task.generate(8101, seed=0)


def _flip_digit(text: str, i: int) -> str:
    return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]


def test_verifier_accepts_gold_rejects_corruptions() -> None:
    task = MultiplicationTask(4)
    rng = random.Random(0)
    for ex in task.generate(300, seed=5):
        t = ex.target
        head, answer = t.split(" #### ")
        assert task.verify(ex, t)
        assert task.verify(ex, f"  {t}\n")
        assert task.verify(ex, "#### " + answer)  # only the answer is checked
        assert task.verify_rationale(ex, t)
        # A wrong answer digit.
        i = 2 * rng.randrange(8)
        assert not task.verify(ex, f"{head} #### {_flip_digit(answer, i)}")
        assert not task.verify_rationale(ex, f"{head} #### {_flip_digit(answer, i)}")
        # Not reversed, too long, unpadded, without spaces, missing marker, empty.
        product = ex.meta["product"]
        assert not task.verify(ex, "#### " + " ".join(str(product).zfill(8)))
        assert not task.verify(ex, f"#### {answer} 0")
        if product < 10**7:
            assert not task.verify(ex, "#### " + " ".join(str(product)[::-1]))
        assert not task.verify(ex, "#### " + str(product).zfill(8)[::-1])
        assert not task.verify(ex, head + " " + answer)
        assert not task.verify(ex, "")
        # A wrong partial product or running sum: verify passes, verify_rationale does not.
        j = 2 * rng.randrange(len(head) // 2 + 1)
        while not head[j].isdigit():
            j = 2 * rng.randrange(len(head) // 2 + 1)
        bad = f"{_flip_digit(head, j)} #### {answer}"
        assert task.verify(ex, bad)
        assert not task.verify_rationale(ex, bad)
        parts = thoughts(t)
        assert not task.verify_rationale(ex, join_thoughts(parts[:1] + parts[2:]))
        assert not task.verify_rationale(ex, join_thoughts([parts[1], parts[0], *parts[2:]]))
        assert not task.verify_rationale(ex, "#### " + answer)


def test_verifier_reads_prompt_not_target() -> None:
    task = MultiplicationTask(4)
    ex = task.make_example(3719, 3349)
    wrong = Example(ex.prompt, "#### 0 0 0 0 0 0 0 0", {})
    assert task.verify(wrong, ex.target)
    assert task.verify_rationale(wrong, ex.target)
    assert not task.verify(wrong, wrong.target)
    assert rationale_thoughts(3719, 3349, 4) == thoughts(ex.target)[:-1]


def test_bucket() -> None:
    for digits in (4, 5):
        task = MultiplicationTask(digits)
        assert {task.bucket(e) for e in task.generate(20, 0)} == {f"{digits}x{digits}"}


def test_tokenizer_round_trip() -> None:
    task = MultiplicationTask(5)
    tok = task.tokenizer()
    assert len(tok) == 5 + len(ALPHABET) == 21
    for ex in task.generate(20, seed=0) + MultiplicationTask(4, cot=False).generate(5, 0):
        for text in (ex.prompt, ex.target):
            ids = tok(text)["input_ids"]
            assert UNK_ID not in ids
            assert len(ids) == len(text)
            assert tok.decode(ids, skip_special_tokens=True) == text


def test_options_validated() -> None:
    for bad in (1, 10, "4", 4.0, True):
        with pytest.raises(ValueError, match="digits"):
            MultiplicationTask(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cot"):
        MultiplicationTask(4, cot="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        MultiplicationTask(4).generate(-1, seed=0)
    with pytest.raises(ValueError):
        MultiplicationTask(4).make_example(999, 1234)
    with pytest.raises(ValueError):
        parse_prompt("1 2 3 * 4 5")
