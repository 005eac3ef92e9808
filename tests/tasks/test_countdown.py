"""Tests for the Countdown task: SoS search, generator, splits, verifiers and tokenizer."""

from __future__ import annotations

import itertools
import random
from functools import cache

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.countdown import (
    ALPHABET,
    CountdownTask,
    answer_length_bound,
    check_solution,
    format_steps,
    game24_solvable_multisets,
    is_solvable,
    lenient_check,
    parse_prompt,
    search,
)
from dlm.tasks.countdown.search import _combine

# MGDM's released CD4 example.
MGDM_PROMPT = "86,28,13,31,96"
MGDM_TARGET = "86+28=114,31-13=18,114-18=96"

KS = [3, 4, 5]


@cache
def _examples(k: int, split: str = "standard", n: int = 120, seed: int = 0) -> list[Example]:
    return CountdownTask(k, split).generate(n, seed)


def test_is_a_task() -> None:
    task = CountdownTask()
    assert isinstance(task, Task)
    assert task.name == "countdown"
    assert (task.numbers, task.split, task.heldout_fraction) == (4, "standard", 0.1)


def test_search_reproduces_the_mgdm_example() -> None:
    nums, target = parse_prompt(MGDM_PROMPT)
    assert (nums, target) == ([86, 28, 13, 31], 96)
    steps = search(nums, target)
    assert steps == [(86, "+", 28, 114), (31, "-", 13, 18), (114, "-", 18, 96)]
    assert format_steps(steps) == MGDM_TARGET
    assert CountdownTask().verify(Example(MGDM_PROMPT, MGDM_TARGET), MGDM_TARGET)
    # SoS order: a+b before a*b; larger-smaller and larger/smaller; division only when exact.
    assert format_steps(search([2, 2], 4)) == "2+2=4"
    assert format_steps(search([3, 12], 4)) == "12/3=4"
    assert format_steps(search([3, 12], 9)) == "12-3=9"
    assert search([5, 12], 2) is None
    assert search([1, 1, 1], 99) is None
    assert search([5], 5) == []


def test_is_solvable_agrees_with_search() -> None:
    rng = random.Random(0)
    for k in (2, 3, 4):
        for _ in range(300):
            nums = [rng.randint(1, 99) for _ in range(k)]
            target = rng.randint(10, 100)
            assert is_solvable(nums, target) == (search(nums, target) is not None)
        for _ in range(300):  # zeros and small targets exercise the edge cases
            nums = [rng.randint(0, 6) for _ in range(k)]
            target = rng.randint(0, 12)
            assert is_solvable(nums, target) == (search(nums, target) is not None)
    for _ in range(30):
        nums = [rng.randint(1, 99) for _ in range(5)]
        target = rng.randint(10, 100)
        assert is_solvable(nums, target) == (search(nums, target) is not None)


@pytest.mark.parametrize("k", KS)
def test_generated_examples_are_first_solutions(k: int) -> None:
    task = CountdownTask(k)
    examples = _examples(k)
    assert len(examples) == 120
    assert len({e.prompt for e in examples}) == 120
    for e in examples:
        nums, target = parse_prompt(e.prompt)
        assert len(nums) == k
        assert all(1 <= v <= 99 for v in nums)
        assert 10 <= target <= 100
        assert e.meta == {"k": k, "target": target}
        assert e.target == format_steps(search(nums, target))
        assert len(e.target.split(",")) == k - 1
        assert set(e.prompt + e.target) <= set(ALPHABET)
        assert task.verify(e, e.target)
        assert task.verify(e, f" {e.target}\n")  # surrounding whitespace is ignored
        assert task.lenient_verify(e, e.target)
        assert task.bucket(e) == f"cd{k}"
        assert task.answer_of(e.target) == str(target)
        assert len(e.target) + 1 <= task.max_answer_tokens


def test_max_answer_tokens() -> None:
    assert [CountdownTask(k).max_answer_tokens for k in KS] == [23, 36, 53]
    assert CountdownTask(4, "24").max_answer_tokens == 31
    assert [answer_length_bound(k) for k in KS] == [22, 35, 52]


def test_length_bound_is_tight_on_a_small_range() -> None:
    """Every correct 3-number answer with inputs 1..9 and targets 10..30, by brute force."""

    def lengths(nums: list[int], path: list) -> list[tuple[int, int]]:
        if len(nums) == 1:
            return [(nums[0], len(format_steps(path)))]
        out = []
        for i, j in itertools.combinations(range(len(nums)), 2):
            rest = [v for m, v in enumerate(nums) if m not in (i, j)]
            for step in _combine(nums[i], nums[j]):
                out += lengths([*rest, step[3]], [*path, step])
        return out

    longest = max(
        length
        for nums in itertools.combinations_with_replacement(range(1, 10), 3)
        for value, length in lengths(list(nums), [])
        if 10 <= value <= 30
    )
    assert longest == answer_length_bound(3, 9, 30)


def test_determinism() -> None:
    task = CountdownTask(4)
    a = task.generate(60, seed=11)
    b = CountdownTask(4).generate(60, seed=11)
    assert [e.to_json() for e in a] == [e.to_json() for e in b]
    assert task.generate(20, seed=11) == a[:20]
    assert task.held_out(60, 7, seed=11)[0] == a
    c = task.generate(60, seed=12)
    assert [e.prompt for e in a] != [e.prompt for e in c]
    assert task.generate(0, seed=1) == []


def test_standard_splits_hold_out_targets() -> None:
    task = CountdownTask(3)
    train, test = task.held_out(300, 60, seed=0)
    assert len(train) == 300 and len(test) == 60
    held = task.held_out_values(0)
    assert len(held) == 9  # 10% of the 91 targets 10..100, as in SoS
    assert len(set(held)) == 9 and all(10 <= t <= 100 for t in held)
    assert {e.meta["target"] for e in test} <= set(held)
    assert not {e.meta["target"] for e in train} & set(held)
    assert len({e.meta["target"] for e in test}) > 1
    prompts = [e.prompt for e in train + test]
    assert len(set(prompts)) == len(prompts)
    again = task.held_out(300, 60, seed=0)
    assert again == (train, test)
    for e in train + test:
        assert task.verify(e, e.target)
    # The held-out set follows the seed unless holdout_seed pins it.
    assert task.held_out_values(1) != held
    pinned = CountdownTask(3, holdout_seed=5)
    assert pinned.held_out_values(0) == pinned.held_out_values(1) == CountdownTask(3).held_out_values(5)
    train1, test1 = pinned.held_out(50, 20, seed=1)
    assert {e.meta["target"] for e in test1} <= set(pinned.held_out_values(0))
    assert not {e.meta["target"] for e in train1} & set(pinned.held_out_values(0))


def test_game24_solvable_multisets() -> None:
    games = game24_solvable_multisets()
    assert len(games) == 1346
    assert len(set(games)) == len(games)
    assert all(g == tuple(sorted(g)) and all(1 <= v <= 13 for v in g) for g in games)
    assert (1, 2, 3, 4) in games
    assert (4, 4, 10, 10) in games  # (10*10-4)/4, integer all the way
    # Solvable only through fractions (Tree-of-Thought's list has them), or not at all.
    for fractional in [(1, 5, 5, 5), (3, 3, 8, 8), (1, 3, 4, 6), (1, 4, 5, 6), (3, 3, 7, 7)]:
        assert fractional not in games
    assert (1, 1, 1, 1) not in games


def test_game24_split() -> None:
    task = CountdownTask(4, "24")
    train, test = task.held_out(300, 80, seed=3)
    assert len(train) == 300 and len(test) == 80
    held = set(task.held_out_values(3))
    assert len(held) == 134
    train_sets = {tuple(sorted(parse_prompt(e.prompt)[0])) for e in train}
    test_sets = {tuple(sorted(parse_prompt(e.prompt)[0])) for e in test}
    assert test_sets <= held
    assert not train_sets & test_sets
    assert not train_sets & held
    for e in train + test:
        nums, target = parse_prompt(e.prompt)
        assert target == 24 and e.prompt.endswith(",24")
        assert all(1 <= v <= 13 for v in nums)
        assert e.target == format_steps(search(nums, 24))
        assert task.verify(e, e.target)
        assert task.lenient_verify(e, e.target)
        assert task.bucket(e) == "24"
        assert task.answer_of(e.target) == "24"
        assert len(e.target) + 1 <= task.max_answer_tokens
    assert task.answer_of("=24") == "24"  # MGDM's released cd4_tot24 output
    with pytest.raises(ValueError, match="distinct"):
        task.held_out(10**6, 0, seed=0)


def _change_last_digit(text: str) -> str:
    return text[:-1] + str((int(text[-1]) + 1) % 10)


@pytest.mark.parametrize(
    ("k", "split"), [(3, "standard"), (4, "standard"), (5, "standard"), (4, "24")]
)
def test_verifier_rejects_corruptions(k: int, split: str) -> None:
    task = CountdownTask(k, split)
    rng = random.Random(k)
    reuse_checked = 0
    for e in _examples(k, split, 60):
        nums, target = parse_prompt(e.prompt)
        steps = e.target.split(",")
        # A wrong digit in any step's result.
        for i, step in enumerate(steps):
            broken = [*steps[:i], _change_last_digit(step), *steps[i + 1 :]]
            assert not task.verify(e, ",".join(broken))
        # A number not in the input: the gold answer against a prompt with one number moved.
        j = rng.randrange(k)
        moved = [*nums[:j], nums[j] + 100, *nums[j + 1 :]]
        assert not task.verify(Example(",".join(map(str, [*moved, target])), e.target), e.target)
        # A final value other than the target: the gold answer against another target.
        other = Example(",".join(map(str, [*nums, target + 1])), e.target)
        assert not task.verify(other, e.target)
        # A reused input: solve with one input replaced by a copy of another, then check that
        # answer against the real input, where the copied number occurs once.
        for i, j in itertools.permutations(range(k), 2):
            if nums.count(nums[i]) > 1:
                continue
            cheat = search([*nums[:j], nums[i], *nums[j + 1 :]], target)
            if cheat is not None:
                reuse_checked += 1
                assert not task.verify(e, format_steps(cheat))
                assert task.lenient_verify(e, format_steps(cheat))  # MGDM does not check use
                break
        # Wrong number of steps, and malformed text.
        assert not task.verify(e, ",".join(steps[:-1]))
        assert not task.verify(e, e.target + f",{target}*1={target}")
        assert not task.verify(e, e.target + ",")
        assert not task.verify(e, "")
        assert not task.verify(e, e.target.replace(",", ", "))
        assert not task.verify(e, "0" + e.target)
    assert reuse_checked >= 3


def test_verifier_rules_on_handmade_answers() -> None:
    task = CountdownTask(3)
    e = Example("3,5,7,15", "3+5=8,8+7=15")
    assert task.verify(e, "3+5=8,8+7=15")
    assert task.verify(e, "5+3=8,7+8=15")  # any operand order
    assert task.verify(e, "7+5=12,12+3=15")  # any correct solution, not only the stored one
    assert not task.verify(e, "5+5=10,10+5=15")  # reuses 5
    assert not task.verify(e, "2+6=8,8+7=15")  # 2 and 6 are not inputs
    assert not task.verify(e, "3+5=8,8+8=16")  # 8 used twice, 7 unused, wrong final
    assert not task.verify(e, "3+5=9,9+6=15")  # wrong arithmetic
    assert not task.verify(e, "3+5=8,8*7=56")  # final value is not the target
    assert not task.verify(e, "8+7=15")  # too few steps
    assert not task.verify(e, "3+5=8,8+7=15,15*1=15")  # too many steps
    assert not task.verify(e, "3+5=08,08+7=15")  # leading zeros
    assert not task.verify(e, "3+5=8;8+7=15")
    assert not task.verify(Example("3,5,7,x", ""), "3+5=8,8+7=15")  # malformed prompt
    assert task.verify(Example("2,6,9,3,9", ""), "9/3=3,6/2=3,3*3=9")  # equal values are fine
    assert not task.verify(Example("2,6,9,3,27", ""), "9/3=3,6/2=3,3*3=9")  # final 9, not 27
    assert not task.verify(Example("2,6,9,3,9", ""), "9/2=4,6/3=2,4*2=8")  # inexact division
    assert not task.verify(Example("6,6,5,0", ""), "6-6=0,5/0=0")  # division by zero
    assert task.verify(Example("6,6,5,0", ""), "6-6=0,5*0=0")
    assert task.verify(Example("2,9,7", ""), "9-2=7")
    assert not task.verify(Example("2,9,7", ""), "2-9=7")  # a negative result
    assert check_solution([4, 4], 1, "4/4=1")
    assert not check_solution([4, 4], 1, "4/4=1,1*1=1")


def test_lenient_verify_reproduces_mgdm_metric() -> None:
    e = Example("3,5,7,15", "3+5=8,8+7=15")
    task = CountdownTask(3)
    assert task.lenient_verify(e, "3+5=8,8+7=15")
    assert task.lenient_verify(e, "5+5=10,10+5=15")  # no use check
    assert task.lenient_verify(e, "8+7=15")  # no step count
    assert task.lenient_verify(e, "3-5=-2,17-2=15")  # negative intermediates pass eval
    assert task.lenient_verify(e, "1*3**2=9,6+9=15")  # eval of the whole left side
    assert not task.lenient_verify(e, "3+5=9,9+6=15")
    assert not task.lenient_verify(e, "3+5=8,8*7=56")
    assert not task.lenient_verify(e, "3+5=8,8+7=15.0")  # final right sides compared as text
    assert task.lenient_verify(e, "3+5=8.0,8+7=15")
    assert not task.lenient_verify(e, "3/0=0,15+0=15")
    assert not task.lenient_verify(e, "")
    assert not task.lenient_verify(e, "3+5=8,")
    assert not task.lenient_verify(e, "15=15")
    assert not task.lenient_verify(e, "3+5=8=8,8+7=15")
    assert not task.lenient_verify(e, "03+5=8,8+7=15")  # eval rejects leading zeros
    assert not task.lenient_verify(e, "3+x=8,8+7=15")
    assert lenient_check("6+18=24", "=24")  # MGDM's cd4_tot24 label


def test_answer_of() -> None:
    task = CountdownTask()
    assert task.answer_of(MGDM_TARGET) == "96"
    assert task.answer_of(f"  {MGDM_TARGET}\n") == "96"
    assert task.answer_of("1+2=03") == "3"
    assert task.answer_of("=24") == "24"
    for bad in ["", "1+2", "1+2=", "1+2=3,", "1+2=x", "1+2=-3", "abc"]:
        assert task.answer_of(bad) is None


def test_options_are_validated() -> None:
    for bad in [
        {"numbers": 2},
        {"numbers": 6},
        {"numbers": True},
        {"numbers": 3, "split": "24"},
        {"split": "cd4"},
        {"heldout_fraction": 0.0},
        {"heldout_fraction": 1.0},
        {"heldout_fraction": 0.001},
        {"holdout_seed": "0"},
    ]:
        with pytest.raises(ValueError):
            CountdownTask(**bad)
    with pytest.raises(ValueError):
        CountdownTask().held_out(-1, 0, seed=0)
    assert len(CountdownTask(5, heldout_fraction=0.2).held_out_values(0)) == 18


def test_tokenizer_round_trip() -> None:
    tok = CountdownTask().tokenizer()
    assert tok(ALPHABET)["input_ids"] == list(range(5, 5 + len(ALPHABET)))
    texts = [MGDM_PROMPT, MGDM_TARGET]
    for k in KS:
        texts += [t for e in _examples(k)[:30] for t in (e.prompt, e.target)]
    texts += [t for e in _examples(4, "24")[:30] for t in (e.prompt, e.target)]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text)
        assert UNK_ID not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
