"""``dlm eval`` refuses another task's examples before anything is sampled: ``--task OTHER``
for a model trained on a task, a data file of another task, a prompt outside the vocabulary."""

from __future__ import annotations

import pytest

import dlm.cli.evaluate as evaluate
import dlm.evaluation.task_eval as task_eval
from dlm.cli.main import main
from helpers import TINY_MODEL

SUDOKU_4X4 = "{box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}"
TINY = [
    f"data.task_options={SUDOKU_4X4}",
    "data.n_train=16",
    "data.n_eval=4",
    *TINY_MODEL,
    "model.max_positions=40",
    "optim.batch_size=8",
    "optim.max_steps=1",
    "progress=false",
]
SUDOKU_OPTIONS = ["--option", "box_rows=2", "--option", "box_cols=2"]
SUDOKU_OPTIONS += ["--option", "min_givens=6", "--option", "max_givens=9"]


@pytest.fixture(scope="module")
def sudoku_model(tmp_path_factory):
    """A 4x4 Sudoku model trained for one step (its train_config.yaml names the task)."""
    out = tmp_path_factory.mktemp("sudoku-run")
    assert main(["train", "recipes/sudoku/diffusion.yaml", *TINY, f"output_dir={out}"]) == 0
    return out / "model"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Test files made by ``dlm task make``: countdown cd3, 4x4 and 9x9 Sudoku."""
    root = tmp_path_factory.mktemp("data")
    runs = {
        "countdown": ["countdown", "--split", "cd3"],
        "sudoku4": ["sudoku", *SUDOKU_OPTIONS],
        "sudoku9": ["sudoku"],
    }
    for name, argv in runs.items():
        out = root / name
        assert main(["task", "make", *argv, "--n", "0", "--n-test", "3", "--out", str(out)]) == 0
    return {name: str(root / name / "test.jsonl") for name in runs}


@pytest.fixture
def sampled(monkeypatch):
    """The prompts the sampler was called on (it must stay empty when eval refuses)."""
    calls: list[int] = []
    real = task_eval.generate

    def counting(model, input_ids, *args, **kwargs):
        calls.append(int(input_ids.shape[0]))
        return real(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(task_eval, "generate", counting)
    return calls


@pytest.fixture
def loaded(monkeypatch):
    """The model directories eval opened."""
    paths: list[str] = []
    real = evaluate.load_model_and_tokenizer

    def recording(path, adapter=None):
        paths.append(path)
        return real(path, adapter)

    monkeypatch.setattr(evaluate, "load_model_and_tokenizer", recording)
    return paths


def _error_lines(capsys) -> list[str]:
    captured = capsys.readouterr()
    assert "accuracy" not in captured.out  # nothing was evaluated
    return captured.err.strip().splitlines()


def test_another_task_named_with_task_is_refused(sudoku_model, capsys, sampled, loaded):
    argv = ["eval", "--model", str(sudoku_model), "--task", "countdown", "--split", "cd3"]
    assert main(argv) == 2
    assert _error_lines(capsys) == [
        "dlm eval: error: this model was trained on sudoku, not countdown (--task countdown); "
        "drop --task to evaluate sudoku, or pass --force-task to evaluate countdown anyway"
    ]
    assert sampled == [] and loaded == []  # refused before the model loads


def test_a_data_file_of_another_task_is_refused(sudoku_model, data, capsys, sampled, loaded):
    assert main(["eval", "--model", str(sudoku_model), "--data", data["countdown"]]) == 2
    assert _error_lines(capsys) == [
        f"dlm eval: error: --data {data['countdown']} holds countdown examples, but this model "
        "was trained on sudoku: none of its first 3 targets passes sudoku's check; evaluate "
        "sudoku examples (dlm task make sudoku, with the model's --split/--option), or pass "
        "--force-task to evaluate these anyway"
    ]
    assert sampled == [] and loaded == []


def test_the_same_data_with_task_named_too_is_refused_for_the_task(
    sudoku_model, data, capsys, sampled
):
    argv = ["eval", "--model", str(sudoku_model), "--task", "countdown", "--split", "cd3"]
    assert main([*argv, "--data", data["countdown"]]) == 2
    (line,) = _error_lines(capsys)
    assert "trained on sudoku, not countdown" in line
    assert sampled == []


def test_another_variant_of_the_task_is_refused(sudoku_model, data, capsys, sampled):
    assert main(["eval", "--model", str(sudoku_model), "--data", data["sudoku9"]]) == 2
    (line,) = _error_lines(capsys)
    assert line.startswith(
        f"dlm eval: error: --data {data['sudoku9']} holds no examples of SudokuTask(box_rows=2, "
        "box_cols=2, min_givens=6, max_givens=9"
    )
    assert "none of its first 3 targets passes sudoku's check" in line
    assert sampled == []


def test_force_task_still_refuses_prompts_outside_the_vocabulary(
    sudoku_model, data, capsys, sampled
):
    argv = ["eval", "--model", str(sudoku_model), "--data", data["countdown"], "--force-task"]
    assert main(argv) == 2
    assert _error_lines(capsys) == [
        f"dlm eval: error: --data {data['countdown']} example 1: ',' is not in the model's "
        "vocabulary (each would be read as [UNK]); write the prompt in the model's alphabet, "
        "or pass --allow-unk to sample anyway"
    ]
    assert sampled == []
    assert main([*argv, "--allow-unk", "--steps", "1"]) == 0  # both overrides: it samples
    assert sampled == [3]


def test_the_models_own_task_and_data_are_evaluated(sudoku_model, data, sampled):
    argv = ["eval", "--model", str(sudoku_model), "--steps", "1"]
    assert main([*argv, "--data", data["sudoku4"]]) == 0
    assert main([*argv, "--task", "sudoku", *SUDOKU_OPTIONS, "--n", "2"]) == 0
    assert sampled == [3, 2]
