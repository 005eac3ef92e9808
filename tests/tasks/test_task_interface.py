"""The one Task interface: every registered task, ``take_distinct``, and each paper metric."""

from __future__ import annotations

import itertools
import random

import pytest

from dlm.errors import DlmUserError
from dlm.tasks import TASKS, Example, Task, get_task, take_distinct
from dlm.tasks.thoughts import ThoughtTask

# Small options so every task generates in well under a second.
OPTIONS = {
    "addition": {"digits": 4},
    "boolean": {},
    "countdown": {"numbers": 3},
    "gsm": {},
    "multi-sudoku": {"count": 2, "box_rows": 2, "box_cols": 2},
    "multiplication": {"digits": 2},
    "path": {"nodes_per_chain": 4},
    "sat": {"variables": 5},
    "sudoku": {"box_rows": 2, "box_cols": 2},
    "sums": {"problems": 3, "digits": 2, "context": 1},
}

# The paper metrics each task reports besides "verify" (documented in its module docstring).
PAPER_METRICS = {
    "addition": {"digit_accuracy"},
    "boolean": {"rationale"},
    "countdown": {"lenient"},
    "gsm": set(),
    "multi-sudoku": {"puzzle_accuracy"},
    "multiplication": {"rationale"},
    "path": {"paper"},
    "sat": {"paper"},
    "sudoku": {"cell_accuracy"},
    "sums": {"sum_accuracy"},
}


def test_every_registered_task_is_listed_here() -> None:
    assert set(OPTIONS) == set(TASKS) == set(PAPER_METRICS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_subclasses_task_and_its_metrics_agree_with_verify(name: str) -> None:
    task = get_task(name, **OPTIONS[name])
    assert isinstance(task, Task) and issubclass(TASKS[name], Task)
    assert task.name == name
    metrics = task.metrics
    assert set(metrics) == {"verify"} | PAPER_METRICS[name]
    examples = task.generate(6, seed=0)
    assert len(examples) == 6
    for example in examples:
        # The gold target is right under every metric; a cut or empty answer is not.
        for metric in metrics.values():
            assert float(metric(example, example.target)) == 1.0
        for wrong in ("", example.target[: len(example.target) // 2]):
            assert metrics["verify"](example, wrong) is False
            assert metrics["verify"](example, wrong) == task.verify(example, wrong)
        assert metrics["verify"](example, example.target) == task.verify(example, example.target)
        assert isinstance(task.bucket(example), str)
        # The vote counts answer_of; the gold target always has an answer.
        assert task.answer_of(example.target) is not None


@pytest.mark.parametrize("name", sorted(TASKS))
def test_held_out_is_disjoint_and_generate_is_its_train_part(name: str) -> None:
    task = get_task(name, **OPTIONS[name])
    train, test = task.held_out(12, 5, seed=3)
    assert (len(train), len(test)) == (12, 5)
    assert not {e.prompt for e in train} & {e.prompt for e in test}
    assert task.held_out(12, 5, seed=3) == (train, test)
    assert task.generate(12, seed=3) == task.held_out(12, 0, seed=3)[0]


def test_optional_parts_of_the_interface() -> None:
    slotted = {name for name in TASKS if get_task(name, **OPTIONS[name]).slots is not None}
    assert slotted == {"sums"}
    thoughts = {name for name in TASKS if isinstance(get_task(name, **OPTIONS[name]), ThoughtTask)}
    assert thoughts == {"boolean", "gsm", "multiplication"}
    # Defaults a task gets from the base class: one bucket, the whole answer as the vote.
    multi = get_task("multi-sudoku", **OPTIONS["multi-sudoku"])
    assert multi.bucket(Example("x", "y")) == "all"
    assert multi.answer_of("  1234 ") == "1234" and multi.answer_of("   ") is None


# ---- take_distinct -----------------------------------------------------------------------


def test_take_distinct_takes_test_first_without_repeating_a_key() -> None:
    stream = iter([3, 1, 3, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    train, test = take_distinct(stream, 4, 2)
    assert test == [3, 1] and train == [4, 5, 9, 2]
    rng = random.Random(0)
    words = (rng.choice("abcdefghij") + rng.choice("ab") for _ in itertools.count())
    train, test = take_distinct(words, 15, 4, key=lambda w: w[0] + w[1])
    keys = [w for w in test + train]
    assert len(set(keys)) == len(keys) == 19


def test_take_distinct_keys_related_items_out_of_the_second_part() -> None:
    # Items are (id, group): a train item may not share a test item's group.
    stream = iter([(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "b"), (6, "d"), (6, "e"), (7, "c")])
    train, test = take_distinct(
        stream, 3, 2, key=lambda item: item[0], related=lambda item: item[1]
    )
    assert test == [(1, "a"), (2, "b")]
    assert train == [(4, "c"), (6, "d"), (7, "c")]  # train items may share a group
    # Train first: the first items go to train, and their groups stay out of test.
    stream = iter([(1, "a"), (2, "a"), (3, "b"), (4, "c")])
    train, test = take_distinct(stream, 1, 2, key=lambda i: i[0], related=lambda i: i[1], test_first=False)
    assert train == [(1, "a")] and test == [(3, "b"), (4, "c")]


def test_take_distinct_raises_when_the_stream_keeps_repeating() -> None:
    with pytest.raises(DlmUserError, match=r"Toy\(\) found only 3 distinct cards of the 5 asked"):
        take_distinct(itertools.cycle([1, 2, 3]), 5, what="cards", owner="Toy()", max_repeats=50)
    with pytest.raises(DlmUserError, match=r"only 1 train / 2 test distinct examples of the 4 / 2"):
        take_distinct(itertools.cycle("abc"), 4, 2, max_repeats=10)
    with pytest.raises(DlmUserError, match="non-negative"):
        take_distinct(iter([]), -1)
    assert take_distinct(iter([]), 0, 0) == ([], [])


def test_the_tasks_say_which_family_ran_out() -> None:
    with pytest.raises(DlmUserError, match="distinct graphs"):
        get_task("path", nodes_per_chain=2).generate(100, seed=0)  # 4 ids: 48 graphs
    with pytest.raises(DlmUserError, match="train / .* test distinct examples"):
        get_task("boolean", depth=1, variables=1).held_out(100, 20, seed=0)


@pytest.mark.parametrize(
    "name, options, option",
    [
        ("addition", {"digits": 0}, "digits"),
        ("boolean", {"neg_prob": 1.5}, "neg_prob"),
        ("countdown", {"numbers": 7}, "numbers"),
        ("countdown", {"split": "24", "numbers": 3}, "numbers=4"),
        ("gsm", {"min_steps": 5, "max_steps": 3}, "min_steps"),
        ("gsm", {"test_path": "test.txt"}, "test_path"),
        ("multi-sudoku", {"count": 0}, "count"),
        ("multiplication", {"digits": 12}, "digits"),
        ("path", {"nodes_per_chain": 4, "nodes": 3}, "nodes"),
        ("sat", {"variables": 20}, "variables"),
        ("sudoku", {"box_rows": 4, "box_cols": 3}, "box_rows"),
        ("sudoku", {"box_rows": 2, "box_cols": 2, "min_givens": 9, "max_givens": 8}, "min_givens"),
        ("sums", {"context": -1}, "context"),
        ("sat", {"varibles": 5}, "'varibles'"),
        ("multi-sudoku", {"rows": 2}, "'rows'"),
    ],
)
def test_bad_task_options_are_user_errors_naming_the_option(name, options, option) -> None:
    with pytest.raises(DlmUserError) as raised:
        get_task(name, **options)
    assert type(raised.value) is DlmUserError  # not a bare ValueError/TypeError: the CLI's one line
    assert option in str(raised.value)


def test_an_unparseable_gsm_file_is_a_data_error(tmp_path) -> None:
    from dlm.data import DataError

    path = tmp_path / "train.txt"
    path.write_text("a question without the separator\n")
    with pytest.raises(DataError, match="malformed GSM8K-Aug line"):
        get_task("gsm", path=str(path)).generate(1, seed=0)
    path.write_text("\n\n")
    with pytest.raises(DataError, match="no GSM8K-Aug examples"):
        get_task("gsm", path=str(path)).generate(1, seed=0)


def test_task_make_with_a_bad_option_prints_one_line_and_exits_2(tmp_path, capsys) -> None:
    from dlm.cli.main import main

    out = tmp_path / "out"
    argv = ["task", "make", "countdown", "--option", "numbers=9", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dlm task") and "error:" in lines[0] and "numbers" in lines[0]
    assert "Traceback" not in captured.err and not out.exists()


# ---- each paper metric on a hand-made example --------------------------------------------


def test_countdown_lenient_is_mgdms_judge() -> None:
    task = get_task("countdown", numbers=3)
    example = Example("3,5,7,15", "3+5=8,8+7=15")
    lenient = task.metrics["lenient"]
    assert lenient(example, "5+5=10,10+5=15") and not task.verify(example, "5+5=10,10+5=15")
    assert lenient(example, "8+7=15")  # the step count is not checked either
    assert not lenient(example, "3+5=8,8+7=16")


def test_sat_paper_metric_is_exact_match_with_the_stored_assignment() -> None:
    task = get_task("sat", variables=3)
    example = Example("abc,Abc", "100")  # (a or b or c) and (not a or b or c)
    paper = task.metrics["paper"]
    assert task.verify(example, "111") and not paper(example, "111")  # satisfying, not stored
    assert paper(example, " 1 0 0 ")  # spaces are ignored
    assert not task.verify(example, "000") and not paper(example, "000")


def test_path_paper_metric_accepts_the_gold_path_reversed() -> None:
    task = get_task("path")
    example = Example(
        "5,9/11,7/2,1/9,3/3,8/7,2/8,4/6,11/5,6/4,0-5,1", "5,6/6,11/11,7/7,2/2,1"
    )
    paper = task.metrics["paper"]
    assert paper(example, "1,2/2,7/7,11/11,6/6,5") and not task.verify(
        example, "1,2/2,7/7,11/11,6/6,5"
    )
    assert paper(example, example.target)
    assert not paper(example, "5,9/9,3/3,8/8,4/4,0")


def test_sudoku_cell_accuracy_is_the_share_of_blanks_filled_right() -> None:
    task = get_task("sudoku", box_rows=2, box_cols=2)
    solution = "1234341221434321"
    example = Example("0234301221434321", solution)  # blanks at cells 0 and 5
    cells = task.metrics["cell_accuracy"]
    assert cells(example, "1234321221434321") == 0.5  # cell 0 right, cell 5 wrong
    assert cells(example, solution) == 1.0 and cells(example, "1") == 0.5
    assert not task.verify(example, "1234321221434321")


def test_multi_sudoku_puzzle_accuracy_is_the_share_of_puzzles_solved() -> None:
    task = get_task("multi-sudoku", count=2, box_rows=2, box_cols=2)
    solution = "1234341221434321"
    example = Example("0234341221434321" * 2, solution * 2)
    wrong = "2234341221434321"
    assert task.metrics["puzzle_accuracy"](example, solution + wrong) == 0.5
    assert task.metrics["puzzle_accuracy"](example, solution + solution) == 1.0
    assert not task.verify(example, solution + wrong)


def test_sums_and_addition_give_partial_credit() -> None:
    sums = get_task("sums", problems=2, digits=1, context=0)
    page = Example("", "1+2=03;4+5=09;")
    assert sums.metrics["sum_accuracy"](page, "1+2=03;4+5=08;") == 0.5
    addition = get_task("addition", digits=2)
    example = Example("12+34", "460")  # 21 + 43 = 64, written "064" reversed
    assert addition.metrics["digit_accuracy"](example, "461") == pytest.approx(2 / 3)
    assert addition.verify(example, "460") and not addition.verify(example, "461")


def test_rationale_metrics_check_every_thought() -> None:
    boolean = get_task("boolean")
    example = Example("a=1,b=0,c=1:(a&b)|!c", "a&b=0,!c=0,0|0=0 #### 0")
    bad_thought = "a&b=1,!c=0,0|0=0 #### 0"
    assert boolean.verify(example, bad_thought) and not boolean.metrics["rationale"](
        example, bad_thought
    )
    mult = get_task("multiplication", digits=2)
    gold = mult.make_example(12, 34)
    bad = gold.target.replace(gold.target[0], "9", 1)
    assert mult.verify(gold, bad) and not mult.metrics["rationale"](gold, bad)
