"""Tests for the GSM task: GSM8K-Aug loading, the word-problem generator, verifier, splits."""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.gsm import (
    GsmTask,
    answer_of,
    generate_word_problem,
    join_thoughts,
    load_gsm_file,
    parse_gsm_line,
    thoughts,
)

# GSM8K-Aug lines in the Implicit-CoT format (the first two are GSM8K's first test questions).
LINES = [
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day at "
    "the farmers' market?||<<16-3-4=9>> <<9*2=18>> #### 18",
    "A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in "
    "total does it take?||<<2/2=1>> <<2+1=3>> #### 3",
    "Tom saves 20% of $1,200. How much does he save?||<<1200*20/100=240>> #### 240",
    "What is 7 plus 5?|| #### 12",
]

TIMES = {"twice": "2", "three times": "3", "four times": "4"}
THOUGHT = re.compile(r"<<([0-9+\-*/]+)=(\d+)>>")


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_is_a_task() -> None:
    task = GsmTask()
    assert isinstance(task, Task)
    assert task.name == "gsm"
    assert (task.path, task.cot, task.min_steps, task.max_steps) == (None, True, 2, 4)


def test_parse_line() -> None:
    ex = parse_gsm_line(LINES[0])
    assert ex.prompt.startswith("Janet’s ducks") and ex.prompt.endswith("market?")
    assert ex.target == "<<16-3-4=9>> <<9*2=18>> #### 18"
    assert ex.meta == {"steps": 2, "answer": "18"}
    assert parse_gsm_line(LINES[0], cot=False).target == "#### 18"
    assert parse_gsm_line(LINES[3]).target == "#### 12"
    # Whitespace between thoughts is normalised.
    assert parse_gsm_line("Q?||<<1+1=2>>   <<2*3=6>>####6").target == "<<1+1=2>> <<2*3=6>> #### 6"


def test_load_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "train.txt", [LINES[0], "", LINES[1], LINES[2]])
    examples = load_gsm_file(path)
    assert [e.target for e in examples] == [
        "<<16-3-4=9>> <<9*2=18>> #### 18",
        "<<2/2=1>> <<2+1=3>> #### 3",
        "<<1200*20/100=240>> #### 240",
    ]
    assert [e.meta["line"] for e in examples] == [1, 3, 4]
    assert [e.meta["steps"] for e in examples] == [2, 2, 1]
    assert examples[1].prompt == LINES[1].split("||")[0]
    assert [e.target for e in load_gsm_file(path, cot=False)] == ["#### 18", "#### 3", "#### 240"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("How many?<<1+1=2>> #### 2", "'\\|\\|'"),
        ("||<<1+1=2>> #### 2", "empty question"),
        ("How many?||<<1+1=2>> 2", "####"),
        ("How many?||<<1+1=2>> #### 2 #### 3", "####"),
        ("How many?||<<1+1=2>> ####  ", "empty answer"),
        ("How many?||so <<1+1=2>> #### 2", "outside"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = _write(tmp_path, "bad.txt", [LINES[1], line])
    with pytest.raises(ValueError, match=reason) as err:
        load_gsm_file(path)
    assert f"{path}:2:" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.txt", ["", "  "])
    with pytest.raises(ValueError, match="no GSM8K-Aug examples"):
        load_gsm_file(path)


def test_generated_problems_are_solvable() -> None:
    task = GsmTask()
    examples = task.generate(400, seed=0)
    for ex in examples:
        parts = thoughts(ex.target)
        steps = parts[:-1]
        assert 2 <= len(steps) <= 4
        assert ex.meta["steps"] == len(steps)
        assert task.bucket(ex) == str(len(steps))
        for step in steps:
            m = THOUGHT.fullmatch(step)
            assert m, step
            value = Fraction(eval(m.group(1)))  # our own generated arithmetic
            assert value.denominator == 1 and value == int(m.group(2))
        assert parts[-1] == f"#### {ex.meta['answer']}"
        assert int(THOUGHT.fullmatch(steps[-1]).group(2)) == int(ex.meta["answer"])  # type: ignore[union-attr]
        assert ex.prompt.endswith("?")
        assert len(ex.target) + 1 <= task.max_answer_tokens
    assert Counter(task.bucket(e) for e in examples).keys() == {"2", "3", "4"}
    # The numbers of each calculation appear in the question or in earlier thoughts.
    for ex in examples[:100]:
        known = set(re.findall(r"\d+", ex.prompt)) | {"100"}
        known |= {d for word, d in TIMES.items() if f" {word} as many" in ex.prompt}
        for step in thoughts(ex.target)[:-1]:
            expr, value = THOUGHT.fullmatch(step).groups()  # type: ignore[union-attr]
            assert set(re.findall(r"\d+", expr)) <= known, (ex.prompt, step)
            known.add(value)


@pytest.mark.parametrize("n_steps", [1, 2, 3, 4, 5, 6])
def test_generator_step_counts(n_steps: int) -> None:
    import random

    rng = random.Random(n_steps)
    for _ in range(50):
        question, steps, answer = generate_word_problem(rng, n_steps)
        assert len(steps) == n_steps
        assert steps[-1].endswith(f"={answer}>>")
        assert question.endswith("?")
    with pytest.raises(ValueError):
        generate_word_problem(rng, 7)


def test_answer_only_and_thoughts_round_trip() -> None:
    for cot in (True, False):
        task = GsmTask(cot=cot, min_steps=1, max_steps=6)
        for ex in task.generate(100, seed=1):
            parts = GsmTask.thoughts(ex.target)
            assert join_thoughts(parts) == ex.target == GsmTask.join_thoughts(parts)
            assert len(parts) == (ex.meta["steps"] + 1 if cot else 1)
            assert parts[-1] == f"#### {ex.meta['answer']}"
            assert task.bucket(ex) == str(ex.meta["steps"])
            for k in range(1, len(parts)):  # a multi-pass prompt shows the start of the target
                assert ex.target.startswith(join_thoughts(parts[:k]) + " ")
    no_cot = GsmTask(cot=False)
    assert no_cot.max_answer_tokens == len("#### ") + 6 + 1
    for line in LINES:
        target = parse_gsm_line(line).target
        assert join_thoughts(thoughts(target)) == target
    assert thoughts("<<16-3-4=9>> <<9*2=18>> #### 18") == ["<<16-3-4=9>>", "<<9*2=18>>", "#### 18"]
    with pytest.raises(ValueError):
        thoughts("<<1+1=2>>")
    assert join_thoughts([]) == ""


def test_answer_of() -> None:
    assert answer_of("<<16-3-4=9>> <<9*2=18>> #### 18") == "18"
    assert GsmTask.answer_of("#### 1,000 \n") == "1,000"
    assert answer_of("#### 5 #### 7") == "7"
    assert answer_of("<<9*2=18>>") is None
    assert answer_of("<<9*2=18>> #### ") is None


def test_verifier_accepts_gold_rejects_corruptions() -> None:
    task = GsmTask()
    for ex in task.generate(300, seed=3):
        answer = ex.meta["answer"]
        head = ex.target.split(" #### ")[0]
        assert task.verify(ex, ex.target)
        assert task.verify(ex, f"#### {answer}")
        assert task.verify(ex, f"{head} #### {int(answer):,}")  # thousands separators
        assert task.verify(ex, f"#### {answer}.0")
        assert not task.verify(ex, f"{head} #### {int(answer) + 1}")
        assert not task.verify(ex, f"#### {answer}0")
        assert not task.verify(ex, head)
        assert not task.verify(ex, f"{head} #### ")
        assert not task.verify(ex, "#### twelve")
    text_gold = Example("Which color?", "#### blue", {})
    assert task.verify(text_gold, "#### blue")
    assert not task.verify(text_gold, "#### red")
    ex = parse_gsm_line(LINES[2])
    assert task.verify(ex, "#### 240") and not task.verify(ex, "#### 2400")


def test_determinism_and_splits() -> None:
    task = GsmTask()
    a = task.generate(200, seed=5)
    assert [e.to_json() for e in a] == [e.to_json() for e in GsmTask().generate(200, 5)]
    assert [e.prompt for e in task.generate(40, seed=5)] == [e.prompt for e in a[:40]]
    assert [e.prompt for e in task.generate(200, seed=6)] != [e.prompt for e in a]
    assert len({e.prompt for e in a}) == 200
    assert task.generate(0, seed=0) == []
    train, test = task.held_out(500, 100, seed=0)
    assert len(train) == 500 and len(test) == 100
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert len({e.prompt for e in train}) == 500
    again = task.held_out(500, 100, seed=0)
    assert [e.prompt for e in again[0]] == [e.prompt for e in train]
    assert [e.prompt for e in again[1]] == [e.prompt for e in test]


def _numbered(i: int) -> str:
    return f"Question {i}: what is {i} plus 1?||<<{i}+0={i}>> <<{i}+1={i + 1}>> #### {i + 1}"


def test_file_backed_task(tmp_path: Path) -> None:
    # Train repeats a question with another rationale (as GSM8K-Aug does) and shares one
    # question with the test file.
    repeat = "Question 3: what is 3 plus 1?||<<3*1=3>> <<1*1=1>> <<3+1=4>> #### 4"
    train_lines = [_numbered(i) for i in range(30)] + [repeat, _numbered(100)]
    test_lines = [_numbered(i) for i in range(100, 110)]
    train_path = _write(tmp_path, "train.txt", train_lines)
    test_path = _write(tmp_path, "test.txt", test_lines)
    task = GsmTask(path=train_path, test_path=test_path)
    all_train = load_gsm_file(train_path)
    assert task.generate(32, seed=0) == all_train
    sample = task.generate(10, seed=1)
    assert sample == task.generate(10, seed=1) and sample != task.generate(10, seed=2)
    assert all(e in all_train for e in sample)
    train, test = task.held_out(31, 10, seed=0)
    assert {e.prompt for e in test} == {e.prompt for e in load_gsm_file(test_path)}
    assert not {e.prompt for e in train} & {e.prompt for e in test}  # question 100 dropped
    assert len(train) == 31
    assert task.max_answer_tokens == max(len(e.target) for e in all_train + test) + 1
    assert {task.bucket(e) for e in train} == {"2", "3"}
    with pytest.raises(ValueError, match="31 examples"):
        task.held_out(32, 5, seed=0)
    with pytest.raises(ValueError, match="32 examples"):
        task.generate(33, seed=0)
    # Without a test file, whole questions are held out of the train file.
    held_out = GsmTask(path=train_path)
    train, test = held_out.held_out(20, 8, seed=3)
    assert len(test) == 8 and len({e.prompt for e in test}) == 8
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert train == held_out.held_out(20, 8, seed=3)[0]
    with pytest.raises(ValueError, match="distinct questions"):
        held_out.held_out(1, 31, seed=0)
    # Answer-only targets from a file keep the step count for bucketing.
    no_cot = GsmTask(path=train_path, cot=False)
    lines = no_cot.generate(32, seed=0)
    assert all(e.target == f"#### {e.meta['answer']}" for e in lines)
    assert [no_cot.bucket(e) for e in lines] == [task.bucket(e) for e in all_train]


def test_tokenizer_round_trip() -> None:
    task = GsmTask()
    tok = task.tokenizer()
    texts = [t for ex in task.generate(50, seed=0) for t in (ex.prompt, ex.target)]
    texts += [part for line in LINES for part in line.split("||")]
    texts.append("It costs €5 — or £4 “today”… that’s 50% off ½ the 3×4 ÷ 2 at 20°!")
    for text in texts:
        ids = tok(text)["input_ids"]
        assert UNK_ID not in ids, text
        assert tok.decode(ids, skip_special_tokens=True) == text
    ids = tok("Café ñ")["input_ids"]
    assert ids.count(UNK_ID) == 2
    assert tok.decode(ids, skip_special_tokens=True) == "Caf "


def test_options_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="test_path"):
        GsmTask(test_path=tmp_path / "test.txt")
    with pytest.raises(ValueError, match="min_steps"):
        GsmTask(min_steps=5, max_steps=4)
    with pytest.raises(ValueError, match="max_steps"):
        GsmTask(max_steps=7)
    with pytest.raises(ValueError, match="min_steps"):
        GsmTask(min_steps=0)
    with pytest.raises(ValueError, match="cot"):
        GsmTask(cot="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        GsmTask().generate(-1, seed=0)
