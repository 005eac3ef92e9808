"""Tests for the Sudoku task: solver, generator, splits, verifier and tokenizer."""

from __future__ import annotations

import random

import pytest

from dlm.tasks.base import Example, Task
from dlm.tasks.sudoku import (
    SudokuTask,
    count_solutions,
    is_valid_solution,
    random_full_grid,
    solvable_by_naked_singles,
    solve,
)

# A well-known 9x9 puzzle with one solution.
CLASSIC = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
CLASSIC_SOLUTION = (
    "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
)

SHAPES = [(2, 2), (2, 3), (3, 3)]


def _generated(task: SudokuTask, n: int, seed: int = 0) -> list[Example]:
    return task.generate(n, seed)


def test_is_a_task() -> None:
    task = SudokuTask(2, 3)
    assert isinstance(task, Task)
    assert task.name == "sudoku"


def test_solver_on_known_puzzle() -> None:
    assert count_solutions(CLASSIC) == 1
    assert solve(CLASSIC) == CLASSIC_SOLUTION
    assert is_valid_solution(CLASSIC_SOLUTION, CLASSIC)
    assert solvable_by_naked_singles(CLASSIC_SOLUTION)
    # Contradictory givens: two 5s in the first row.
    bad = "55" + CLASSIC[2:]
    assert count_solutions(bad) == 0
    assert solve(bad) is None


def test_solver_counts() -> None:
    empty4 = "0" * 16
    assert count_solutions(empty4, limit=2, box_rows=2, box_cols=2) == 2
    assert count_solutions(empty4, limit=10_000, box_rows=2, box_cols=2) == 288  # all 4x4 grids
    assert count_solutions("0" * 81, limit=2) == 2
    assert count_solutions(CLASSIC_SOLUTION, limit=5) == 1
    with pytest.raises(ValueError):
        count_solutions("123", box_rows=2, box_cols=2)


@pytest.mark.parametrize(("br", "bc"), SHAPES)
def test_random_full_grid_is_valid_and_seeded(br: int, bc: int) -> None:
    a = random_full_grid(random.Random(5), br, bc)
    b = random_full_grid(random.Random(5), br, bc)
    assert a == b
    assert is_valid_solution(a, None, br, bc)
    grids = {random_full_grid(random.Random(s), br, bc) for s in range(10)}
    assert len(grids) > 1


@pytest.mark.parametrize(
    ("br", "bc", "lo", "hi", "count"),
    [(2, 2, 4, 7, 60), (2, 3, 10, 14, 60), (2, 3, 18, 24, 60), (3, 3, 24, 30, 15)],
)
def test_generated_puzzles_unique_and_in_range(
    br: int, bc: int, lo: int, hi: int, count: int
) -> None:
    task = SudokuTask(br, bc, min_givens=lo, max_givens=hi)
    examples = task.generate(count, seed=3)
    assert len(examples) == count
    assert len({e.prompt for e in examples}) == count
    n = br * bc
    for e in examples:
        assert len(e.prompt) == len(e.target) == n * n
        givens = sum(ch != "0" for ch in e.prompt)
        assert e.meta == {"givens": givens}
        assert lo <= givens <= hi
        assert count_solutions(e.prompt, 2, br, bc) == 1
        assert solve(e.prompt, br, bc) == e.target
        assert task.verify(e, e.target)
        # The prompt is the solution with blanks.
        assert all(p in ("0", t) for p, t in zip(e.prompt, e.target, strict=True))


@pytest.mark.parametrize(("br", "bc", "lo", "hi"), [(2, 3, 10, 16), (3, 3, 31, 36)])
def test_singles_only(br: int, bc: int, lo: int, hi: int) -> None:
    task = SudokuTask(br, bc, min_givens=lo, max_givens=hi, singles_only=True)
    examples = task.generate(30, seed=7)
    for e in examples:
        assert lo <= e.meta["givens"] <= hi
        assert solvable_by_naked_singles(e.prompt, br, bc)
        assert task.solvable_by_naked_singles(e.prompt)
        assert count_solutions(e.prompt, 2, br, bc) == 1


def test_harder_puzzles_need_more_than_singles() -> None:
    task = SudokuTask(2, 3, min_givens=8, max_givens=11)
    examples = task.generate(40, seed=0)
    assert any(not task.solvable_by_naked_singles(e.prompt) for e in examples)


def test_bucket_counts_the_givens() -> None:
    task = SudokuTask(3, 3)
    assert task.bucket(Example(CLASSIC, CLASSIC_SOLUTION)) == "givens30"
    examples = SudokuTask(2, 3, min_givens=18, max_givens=20).generate(30, seed=1)
    assert {SudokuTask(2, 3).bucket(e) for e in examples} <= {"givens18", "givens19", "givens20"}


def test_default_givens() -> None:
    assert (
        SudokuTask(3, 3, singles_only=True).min_givens,
        SudokuTask(3, 3, singles_only=True).max_givens,
    ) == (31, 36)
    assert (SudokuTask(2, 3).min_givens, SudokuTask(2, 3).max_givens) == (18, 24)
    with pytest.raises(ValueError):
        SudokuTask(2, 3, min_givens=30, max_givens=20)
    with pytest.raises(ValueError):
        SudokuTask(4, 4)


def test_determinism() -> None:
    task = SudokuTask(2, 3)
    a = task.generate(50, seed=11)
    b = SudokuTask(2, 3).generate(50, seed=11)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert [e.prompt for e in task.generate(20, seed=11)] == [e.prompt for e in a[:20]]
    c = task.generate(50, seed=12)
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert task.generate(0, seed=1) == []


def test_splits_disjoint_in_solution_grids() -> None:
    task = SudokuTask(2, 2, min_givens=5, max_givens=7)  # only 288 grids: collisions are common
    train, test = task.held_out(300, 40, seed=0)
    assert len(train) == 300 and len(test) == 40
    assert not {e.target for e in train} & {e.target for e in test}
    prompts = [e.prompt for e in train + test]
    assert len(set(prompts)) == len(prompts)
    again = task.held_out(300, 40, seed=0)
    assert [e.prompt for e in again[0]] == [e.prompt for e in train]
    assert [e.prompt for e in again[1]] == [e.prompt for e in test]

    task6 = SudokuTask(2, 3)
    train6, test6 = task6.held_out(200, 50, seed=1)
    assert not {e.target for e in train6} & {e.target for e in test6}


def _corrupt_one(target: str, i: int, n: int) -> str:
    wrong = str(int(target[i]) % n + 1)
    return target[:i] + wrong + target[i + 1 :]


@pytest.mark.parametrize(("br", "bc"), SHAPES)
def test_verifier_accepts_gold_rejects_corruptions(br: int, bc: int) -> None:
    task = SudokuTask(br, bc)
    n = br * bc
    rng = random.Random(0)
    for e in task.generate(10, seed=2):
        t = e.target
        assert task.verify(e, t)
        assert task.verify(e, f"  {t}\n")  # surrounding whitespace is ignored
        # One wrong digit anywhere.
        i = rng.randrange(n * n)
        assert not task.verify(e, _corrupt_one(t, i, n))
        # Swap two cells of a row where one is a given: rows stay permutations, but the
        # given is broken (and columns usually too).
        given = next(j for j, ch in enumerate(e.prompt) if ch != "0")
        row = given // n
        other = next(j for j in range(row * n, row * n + n) if t[j] != t[given])
        swapped = list(t)
        swapped[given], swapped[other] = swapped[other], swapped[given]
        assert not task.verify(e, "".join(swapped))
        # Wrong length, non-digits, zeros, out-of-range digits.
        assert not task.verify(e, t[:-1])
        assert not task.verify(e, t + t[-1])
        assert not task.verify(e, "")
        assert not task.verify(e, "x" + t[1:])
        assert not task.verify(e, t[: n * n // 2] + " " + t[n * n // 2 + 1 :])
        assert not task.verify(e, "0" + t[1:])
        if n < 9:
            assert not task.verify(e, str(n + 1) + t[1:])
        assert not task.verify(e, e.prompt)


def test_verifier_uses_rules_not_the_stored_target() -> None:
    # A puzzle with several solutions: any valid completion that keeps the givens passes.
    puzzle = "1200340000000000"
    a, b = "1243342121344312", "1243341221344321"
    example = Example(puzzle, a, {"givens": 4})
    task = SudokuTask(2, 2)
    assert task.verify(example, a)
    assert task.verify(example, b)
    assert not task.verify(example, "2143342112344312")  # valid grid, breaks the givens


def test_cell_accuracy() -> None:
    task = SudokuTask(2, 2)
    e = task.generate(1, seed=0)[0]
    assert task.cell_accuracy(e, e.target) == 1.0
    assert task.cell_accuracy(e, "") == 0.0
    blanks = [i for i, ch in enumerate(e.prompt) if ch == "0"]
    broken = _corrupt_one(e.target, blanks[0], 4)
    assert task.cell_accuracy(e, broken) == pytest.approx(1 - 1 / len(blanks))


def test_tokenizer_round_trip() -> None:
    task = SudokuTask(3, 3)
    tok = task.tokenizer()
    ids = tok(CLASSIC)["input_ids"]
    assert ids == [int(ch) + 5 for ch in CLASSIC]
    assert tok.decode(ids, skip_special_tokens=True) == CLASSIC
    full = tok(CLASSIC + "[SEP]" + CLASSIC_SOLUTION + "[EOS]")["input_ids"]
    assert len(full) == 164  # MGDM's Sudoku cutoff_len
