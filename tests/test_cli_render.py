"""``dlm generate`` on a task model: the answer in the task's form by default, flat with
``--raw``; JSONL results keep the flat ``output`` and add ``rendered``; no task, no change."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

from dlm.cli.generate import recorded_task
from dlm.cli.main import main
from dlm.tasks import SudokuTask
from test_cli import trained  # noqa: F401  (the fixture ``model`` reads)

PROMPT = "0234341221434321"
#: Greedy, 4 steps, EOS and padding held off so the tiny model writes all 16 cells.
SAMPLE = ["--steps", "4", "--eos-penalty", "50"]


def _generate(model, *extra: str) -> str:
    """What ``dlm generate --prompt PROMPT`` prints on stdout, trailing newline dropped."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["generate", "--model", str(model), "--prompt", PROMPT, *SAMPLE, *extra]) == 0
    return out.getvalue().rstrip("\n")


@pytest.fixture(scope="module")
def model(trained):  # noqa: F811
    """The tiny Sudoku model of ``test_cli`` (trained once for this module)."""
    return trained


@pytest.fixture(scope="module")
def raw(model) -> str:
    """The model's flat answer to ``PROMPT`` (``--raw``)."""
    return _generate(model, "--raw")


def _grid(cells: str) -> str:
    """The 4x4 grid of 16 digits, written out by hand (not through the renderer)."""
    c = ["." if ch == "0" else ch for ch in cells]
    row = "{} {} | {} {}".format
    return "\n".join([row(*c[0:4]), row(*c[4:8]), "----+----", row(*c[8:12]), row(*c[12:16])])


def test_the_model_records_its_task(model):
    task = recorded_task(str(model))
    assert isinstance(task, SudokuTask) and (task.box_rows, task.box_cols) == (2, 2)


def test_a_prompt_prints_a_grid_by_default_and_the_flat_string_with_raw(model, raw):
    assert len(raw) == 16 and raw.isdigit(), raw
    shown = _generate(model)
    assert shown == _grid(raw)
    assert shown.splitlines()[2] == "----+----"


def test_jsonl_results_keep_output_and_add_rendered(model, raw, tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"prompt": PROMPT, "id": 7}) + "\n")
    argv = ["generate", "--model", str(model), "--input", str(src), *SAMPLE]
    assert main([*argv, "--output", str(dst)]) == 0
    (record,) = [json.loads(line) for line in dst.read_text().splitlines()]
    assert set(record) == {"prompt", "id", "output", "rendered"}
    assert record["output"] == raw and record["rendered"] == _grid(raw)
    capsys.readouterr()
    assert main([*argv, "--raw"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"prompt": PROMPT, "id": 7, "output": raw}


def test_a_model_without_a_task_prints_and_writes_output_only(model, raw, tmp_path):
    plain = tmp_path / "plain" / "model"
    shutil.copytree(model, plain)
    (plain / "train_config.yaml").unlink()
    assert recorded_task(str(plain)) is None
    assert _generate(plain) == raw
    dst = tmp_path / "out.jsonl"
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": PROMPT}) + "\n")
    argv = ["generate", "--model", str(plain), "--input", str(src), "--output", str(dst)]
    assert main([*argv, *SAMPLE]) == 0
    assert json.loads(dst.read_text()) == {"prompt": PROMPT, "output": raw}


def test_a_task_that_cannot_be_rebuilt_is_shown_raw_with_a_note(model, raw, tmp_path, capsys):
    broken = tmp_path / "broken" / "model"
    shutil.copytree(model, broken)
    config = broken / "train_config.yaml"
    config.write_text(config.read_text().replace("box_rows: 2", "box_rows: 5"))
    capsys.readouterr()
    assert main(["generate", "--model", str(broken), "--prompt", PROMPT, *SAMPLE]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip("\n") == raw
    assert "answers are shown raw: the model's task cannot be rebuilt" in err
