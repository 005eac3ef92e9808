"""Tests for the page-of-sums infilling task, its slot encoding and its template canvas."""

from __future__ import annotations

import pytest
import torch

from dlm.data import encode_slots
from dlm.data.char_tokenizer import SEP_ID
from dlm.evaluation.task_eval import template_canvas
from dlm.tasks import get_task
from dlm.tasks.base import Example, Task
from dlm.tasks.sums import SumsTask


def test_format_and_slots() -> None:
    task = get_task("sums", problems=3, digits=2, context=1)
    assert isinstance(task, Task)
    (page,) = task.generate(1, seed=0)
    assert len(page.prompt) == task.width == 10 and len(page.target) == 3 * 10
    assert task.max_answer_tokens == 30
    for part in [page.prompt, *[page.target[k * 10 : (k + 1) * 10] for k in range(3)]]:
        a, rest = part.split("+")
        b, s = rest.rstrip(";").split("=")
        assert len(a) == len(b) == 2 and len(s) == 3 and int(a) + int(b) == int(s)
    slots = task.slots(page)
    assert len(slots) == 9
    assert "".join(page.target[i] for i in slots) == "".join(
        page.target[k * 10 + 6 : k * 10 + 9] for k in range(3)
    )
    assert all(page.target[i - 1] == "=" for i in slots[::3])


def test_verifier_and_sum_accuracy() -> None:
    task = SumsTask(problems=4, digits=3)
    for page in task.generate(50, seed=1):
        assert task.verify(page, page.target) and task.sum_accuracy(page, page.target) == 1.0
        slot = task.slots(page)[5]  # a digit of the second answer
        wrong = (
            page.target[:slot] + str((int(page.target[slot]) + 1) % 10) + page.target[slot + 1 :]
        )
        assert not task.verify(page, wrong)
        assert task.sum_accuracy(page, wrong) == 0.75
        assert task.sum_accuracy(page, page.target[:-1]) == 0.0
    # Changing an operand (outside the slots) is not a valid answer, even if the sum fits it.
    page = Example("", "100+200=0300;")
    assert not SumsTask(problems=1).verify(page, "100+201=0301;")
    assert SumsTask(problems=1).verify(page, "100+200=0300;")


def test_seeded_and_split() -> None:
    task = SumsTask(problems=8)
    assert task.generate(5, seed=3) == task.generate(5, seed=3)
    assert task.generate(5, seed=3) != task.generate(5, seed=4)
    train, test = task.held_out(20, 5, seed=0)
    assert len(train) == 20 and len(test) == 5
    assert not {e.target for e in train} & {e.target for e in test}
    with pytest.raises(ValueError, match="problems"):
        SumsTask(problems=0)


def test_only_the_answer_digits_are_noisable() -> None:
    task = SumsTask(problems=3, digits=2, context=1)
    tok = task.tokenizer()
    pages = task.generate(4, seed=0)
    data = encode_slots(
        tok, [p.prompt for p in pages], [p.target for p in pages], [task.slots(p) for p in pages]
    )
    assert data.input_ids.shape == (4, 10 + 1 + 30)
    assert (data.input_ids[:, 10] == SEP_ID).all()
    assert data.noisable.sum(1).tolist() == [9] * 4
    noisy_text = tok.decode(data.input_ids[0][data.noisable[0]].tolist())
    assert noisy_text == "".join(pages[0].target[i] for i in task.slots(pages[0]))
    assert (
        tok.decode(data.input_ids[0].tolist(), skip_special_tokens=True)
        == pages[0].prompt + pages[0].target
    )


def test_template_canvas_pins_everything_but_the_slots() -> None:
    task = SumsTask(problems=2, digits=1, context=1)
    tok = task.tokenizer()
    pages = task.generate(3, seed=0)
    canvas = template_canvas(tok, task, pages)
    assert canvas.shape == (3, 2 * task.width)
    for row, page in zip(canvas, pages, strict=True):
        free = (row == -1).nonzero().flatten().tolist()
        assert free == task.slots(page)
        kept = row[row != -1].tolist()
        assert tok.decode(kept) == "".join(c for i, c in enumerate(page.target) if i not in free)
    assert template_canvas(tok, get_task("path"), pages) is None
    assert torch.is_tensor(canvas)
