"""The stops a newcomer meets first are one line and exit status 2 through the CLI: a task-option
typo (in a recipe override or ``--option``) and a NaN loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlm.cli.main import main
from dlm.training import objectives
from helpers import SUDOKU_4X4, TINY_MODEL

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    SUDOKU_4X4,
    "data.n_train=32",
    "data.n_eval=4",
    *TINY_MODEL,
    "model.max_positions=40",
    "optim.batch_size=4",
    "optim.max_steps=4",
    "progress=false",
]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "recipes/countdown/cd3.yaml", "data.task_options.numbrs=3"],
        ["train", "recipes/countdown/cd3.yaml", "data.task_options={numbrs: 3}"],
        ["task", "make", "countdown", "--option", "numbrs=3"],
    ],
)
def test_a_task_option_typo_is_one_line_naming_it(argv, tmp_path, capsys, monkeypatch):
    if argv[0] == "train":
        argv = [argv[0], str(ROOT / argv[1]), *argv[2:], f"output_dir={tmp_path / 'run'}"]
    monkeypatch.chdir(tmp_path)  # task make's default --out would land here
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "numbrs" in line and "Traceback" not in line
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_nan_loss_stops_the_cli_with_one_line_naming_the_last_checkpoint(
    tmp_path, capsys, monkeypatch
):
    real = objectives.DiffusionObjective.__call__

    def poisoned(self, model, batch, step):
        out = real(self, model, batch, step)
        if step == 2:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(objectives.DiffusionObjective, "__call__", poisoned)
    argv = [
        "train",
        "recipes/sudoku/diffusion.yaml",
        *TINY,
        "save_every=2",
        f"output_dir={tmp_path}",
    ]
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert line.startswith("dlm train: error: the loss became nan at step 3")
    assert str(tmp_path / "checkpoint-2") in line
