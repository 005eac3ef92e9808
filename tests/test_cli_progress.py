"""Progress bars of the long commands: on a terminal-like stderr, never in a pipe, never with
``--quiet``; and the tasks' progress hook that ``dlm task make`` draws its bar from."""

from __future__ import annotations

import io
import sys

import pytest

from dlm.cli.main import main
from dlm.tasks import get_task
from helpers import tiny_model


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


#: Where stderr goes, and whether a bar is expected there: a terminal, a pipe, --quiet.
MODES = {"terminal": (_Terminal, [], True), "pipe": (io.StringIO, [], False)}
MODES["quiet"] = (_Terminal, ["--quiet"], False)


def _stderr_of(monkeypatch, mode: str, argv: list[str]) -> tuple[str, bool]:
    """Run ``dlm argv`` (plus --quiet in that mode) with stderr captured; (text, bar expected)."""
    stream_type, extra, expected = MODES[mode]
    stream = stream_type()
    monkeypatch.setattr(sys, "stderr", stream)
    assert main([*argv, *extra]) == 0
    monkeypatch.undo()
    return stream.getvalue(), expected


@pytest.fixture(scope="module")
def path_checkpoint(tmp_path_factory):
    """An untrained tiny model with the path task's tokenizer, saved as a dlm checkpoint."""
    out = tmp_path_factory.mktemp("progress") / "model"
    tiny_model(seed=1).save_pretrained(out, get_task("path", nodes_per_chain=4).tokenizer())
    return out


@pytest.mark.parametrize("mode", MODES)
def test_task_make_counts_the_examples_made(tmp_path, monkeypatch, mode):
    argv = ["task", "make", "path", "--option", "nodes_per_chain=4", "--n", "20"]
    argv += ["--n-test", "5", "--out", str(tmp_path / "data")]
    text, bar = _stderr_of(monkeypatch, mode, argv)
    if bar:
        assert "make path" in text and "25/25" in text and "ex/s" in text
    else:
        assert text == ""
    assert len((tmp_path / "data" / "train.jsonl").read_text().splitlines()) == 20


@pytest.mark.parametrize("mode", MODES)
def test_eval_ppl_shows_the_elbo_batches(path_checkpoint, tmp_path, monkeypatch, mode):
    data = tmp_path / "notes.txt"
    data.write_text("1,2/2,3/3,4\n\n4,3/3,2")
    argv = ["eval", "ppl", "--model", str(path_checkpoint), "--data", str(data)]
    argv += ["--seq-len", "8", "--mc-num", "4", "--batch-size", "2"]
    text, bar = _stderr_of(monkeypatch, mode, argv)
    if bar:
        # windows of 7 tokens after the start token: 7 + 4 and 7; 4 samples each, 2 a batch
        assert "ELBO" in text and "6/6" in text and "batch/s" in text
    else:
        assert "ELBO" not in text and "batch/s" not in text


@pytest.mark.parametrize("mode", MODES)
def test_eval_shows_the_examples_made_and_evaluated(path_checkpoint, monkeypatch, mode):
    argv = ["eval", "--model", str(path_checkpoint), "--task", "path"]
    argv += ["--option", "nodes_per_chain=4", "--n", "3", "--steps", "1"]
    text, bar = _stderr_of(monkeypatch, mode, argv)
    if bar:
        assert "make path examples" in text and "eval path" in text and "3/3" in text
    else:
        assert "ex/s" not in text and "3/3" not in text


@pytest.mark.parametrize("mode", MODES)
def test_convert_shows_its_three_steps(path_checkpoint, tmp_path, monkeypatch, mode):
    dst = tmp_path / "converted"
    text, bar = _stderr_of(monkeypatch, mode, ["convert", str(path_checkpoint), str(dst)])
    if bar:
        assert "convert" in text and "3/3" in text and "write the dlm checkpoint" in text
    else:
        assert text == ""
    assert (dst / "dlm_config.json").is_file()


def test_convert_names_each_step_as_it_starts(path_checkpoint, tmp_path):
    from dlm.checkpoints import convert

    steps: list[str] = []
    convert(path_checkpoint, tmp_path / "out", progress=steps.append)
    assert len(steps) == 3
    size = (path_checkpoint / "model.safetensors").stat().st_size
    assert steps[0] == f"read the weights (1 file, {size / 1e6:.1f} MB)"
    assert steps[1:] == ["read the tokenizer", "write the dlm checkpoint"]


def test_the_default_generator_reports_each_example_taken():
    task = get_task("path", nodes_per_chain=4)
    calls: list[int] = []
    train, test = task.held_out(6, 2, 0, progress=calls.append)
    assert calls == [1] * 8
    assert (train, test) == task.held_out(6, 2, 0)  # the hook changes nothing
    calls.clear()
    assert task.generate(5, 3, progress=calls.append) == task.generate(5, 3)
    assert calls == [1] * 5


#: Small options for every registered task (test_every_task_is_covered checks the list).
SMALL = {
    "addition": {"digits": 3},
    "boolean": {"depth": 2},
    "countdown": {"numbers": 3},
    "countdown-24": {"split": "24"},
    "gsm": {},
    "multi-sudoku": {"count": 3, "box_rows": 2, "box_cols": 2},
    "multiplication": {"digits": 2},
    "path": {"nodes_per_chain": 4},
    "sat": {"variables": 3},
    "sudoku": {"box_rows": 2, "box_cols": 2},
    "sums": {"problems": 4, "digits": 2},
}


def _small(case: str):
    return get_task(case.removesuffix("-24"), **SMALL[case])


def test_every_task_is_covered():
    from dlm.tasks import TASKS

    assert {case.removesuffix("-24") for case in SMALL} == set(TASKS)


@pytest.mark.parametrize("case", SMALL)
def test_every_task_reports_each_example_as_it_is_made(case):
    task = _small(case)
    calls: list[int] = []
    train, test = task.held_out(6, 3, 0, progress=calls.append)
    assert (len(train), len(test)) == (6, 3)
    assert calls == [1] * 9  # live, one call per example, not one at the end
    assert (train, test) == task.held_out(6, 3, 0)  # the hook changes nothing
    calls.clear()
    made = task.generate(5, 1, progress=calls.append)
    assert calls == [1] * 5 and made == task.generate(5, 1)
    calls.clear()
    assert task.held_out(4, 2, 2, progress=calls.append) == task.held_out(4, 2, 2)
    assert calls == [1] * 6
    calls.clear()
    assert task.generate(0, 0, progress=calls.append) == [] and calls == []


def test_gsm_from_files_reports_each_part_once_sampled(tmp_path):
    def line(i: int) -> str:
        return f"Question {i}: what is {i} plus 1?||<<{i}+1={i + 1}>> #### {i + 1}"

    train_file, test_file = tmp_path / "train.txt", tmp_path / "test.txt"
    train_file.write_text("\n".join(line(i) for i in range(20)) + "\n", encoding="utf-8")
    test_file.write_text("\n".join(line(i) for i in range(100, 105)) + "\n", encoding="utf-8")
    for options in ({"path": train_file}, {"path": train_file, "test_path": test_file}):
        task = get_task("gsm", **options)
        calls: list[int] = []
        split = task.held_out(8, 4, 0, progress=calls.append)
        assert split == task.held_out(8, 4, 0) and calls == [4, 8]  # test, then train
        calls.clear()
        assert task.generate(6, 1, progress=calls.append) == task.generate(6, 1)
        assert calls == [6]


def test_no_progress_is_the_plain_call():
    task = get_task("path", nodes_per_chain=4)
    assert task.held_out(3, 1, 2, progress=None) == task.held_out(3, 1, 2)
    assert task.generate(2, 1, progress=None) == task.generate(2, 1)
