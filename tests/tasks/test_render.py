"""``Task.render``: each task's answer in its native form, and the raw text for what it cannot read."""

from __future__ import annotations

import pytest

from dlm.tasks import get_task
from dlm.tasks.sudoku.task import render_grid

SUDOKU_6X6 = "123456456123214365365214531642642531"
SUDOKU_6X6_GRID = "\n".join(
    [
        "1 2 3 | 4 5 6",
        "4 5 6 | 1 2 3",
        "------+------",
        "2 1 4 | 3 6 5",
        "3 6 5 | 2 1 4",
        "------+------",
        "5 3 1 | 6 4 2",
        "6 4 2 | 5 3 1",
    ]
)
SUDOKU_4X4 = "1234341221434321"
SUDOKU_4X4_GRID = "1 2 | 3 4\n3 4 | 1 2\n----+----\n2 1 | 4 3\n4 3 | 2 1"


def test_sudoku_6x6_answer_is_a_grid_with_2x3_boxes():
    task = get_task("sudoku", box_rows=2, box_cols=3)
    assert task.render("0" * 36, SUDOKU_6X6) == SUDOKU_6X6_GRID
    assert task.render("0" * 36, f"  {SUDOKU_6X6}\n") == SUDOKU_6X6_GRID  # surrounding space


def test_sudoku_4x4_answer_and_a_generated_target():
    task = get_task("sudoku", box_rows=2, box_cols=2)
    assert task.render("", SUDOKU_4X4) == SUDOKU_4X4_GRID
    example = task.generate(1, seed=0)[0]
    rows = task.render(example.prompt, example.target).splitlines()
    assert rows[2] == "----+----" and len(rows) == 5
    assert "".join(rows[:2] + rows[3:]).replace(" ", "").replace("|", "") == example.target


def test_sudoku_9x9_rule_lines_up_with_the_box_bars():
    grid = render_grid("0" * 80 + "9", 3, 3)
    rows = grid.splitlines()
    assert len(rows) == 11
    assert rows[0] == ". . . | . . . | . . ."
    assert rows[3] == rows[7] == "------+-------+------"
    assert rows[10] == ". . . | . . . | . . 9"
    assert [i for i, ch in enumerate(rows[0]) if ch == "|"] == [6, 14]
    assert [i for i, ch in enumerate(rows[3]) if ch == "+"] == [6, 14]


def test_a_wrong_digit_is_drawn_as_written_and_a_blank_as_a_dot():
    task = get_task("sudoku", box_rows=2, box_cols=2)
    assert task.render("", "4144444497343410") == (
        "4 1 | 4 4\n4 4 | 4 4\n----+----\n9 7 | 3 4\n3 4 | 1 ."
    )


@pytest.mark.parametrize(
    "answer",
    ["", "4", SUDOKU_4X4[:-1], SUDOKU_4X4 + "1", "12a4341221434321", "1234 34122143432"],
)
def test_an_unreadable_sudoku_answer_comes_back_unchanged(answer):
    task = get_task("sudoku", box_rows=2, box_cols=2)
    assert task.render("", answer) == answer
    assert render_grid(answer, 2, 2) is None


def test_multi_sudoku_answer_is_its_grids_a_blank_line_apart():
    task = get_task("multi-sudoku", count=2, box_rows=2, box_cols=2)
    answer = SUDOKU_4X4 + "2143432112343412"
    second = "2 1 | 4 3\n4 3 | 2 1\n----+----\n1 2 | 3 4\n3 4 | 1 2"
    assert task.render("", answer) == f"{SUDOKU_4X4_GRID}\n\n{second}"
    assert task.render("", SUDOKU_4X4) == SUDOKU_4X4  # one puzzle's worth, not two
    assert task.render("", SUDOKU_4X4 + "214343211234341x") == SUDOKU_4X4 + "214343211234341x"


def test_countdown_answer_is_its_equations_one_per_line():
    task = get_task("countdown", numbers=5)
    answer = "86+28=114,31-13=18,114-18=96"
    assert task.render("86,28,13,31,96", answer) == "86+28=114\n31-13=18\n114-18=96"
    assert task.render("", "7*8=56,56/4=14") == "7*8=56\n56/4=14"
    assert task.render("", "1+2=4") == "1+2=4"  # the form is read, not the arithmetic


@pytest.mark.parametrize("answer", ["", "=24", "86+28=114,", "86+28=114,31-13", "7*08=56", "abc"])
def test_an_unreadable_countdown_answer_comes_back_unchanged(answer):
    assert get_task("countdown", numbers=3).render("", answer) == answer


def test_path_answer_is_its_nodes():
    task = get_task("path")
    assert task.render("", "5,6/6,11/11,7/7,2/2,1") == "5 -> 6 -> 11 -> 7 -> 2 -> 1"
    assert task.render("", "3,4") == "3 -> 4"
    for broken in ("5,6/7,2", "5,6/", "", "5-6"):
        assert task.render("", broken) == broken


def test_a_task_without_a_native_form_returns_the_answer():
    for name, answer in [("addition", "579"), ("sat", "garbage, kept as is ")]:
        assert get_task(name).render("123+456", answer) == answer
