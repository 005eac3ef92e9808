"""User mistakes against bugs: only a ``DlmUserError`` prints as one line with exit status 2.

A mistake the user can fix (a mistyped recipe key, a missing directory, a bad flag value)
reaches ``dlm.cli.main.main`` as a ``DlmUserError`` and becomes ``dlm <command>: error: ...``
on one line of stderr. Anything else, here a ``ValueError`` or ``KeyError`` raised deep inside
a subcommand, is a bug: ``main`` lets it propagate with its traceback.
"""

from __future__ import annotations

import json

import pytest

import dlm
from dlm.checkpoints import UnsupportedCheckpointError
from dlm.cli.main import main
from dlm.config import ConfigError
from dlm.data import DataError
from dlm.errors import DlmUserError, SettingsError
from dlm.models import NotADlmCheckpointError
from dlm.training import TrainingDivergedError
from helpers import tiny_model

RECIPE = "recipes/sudoku/diffusion.yaml"


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dlm {command}: error: ")
    assert "Traceback" not in err
    return lines[0]


def test_every_user_error_class_is_a_dlm_user_error():
    for cls in (
        ConfigError,
        DataError,
        NotADlmCheckpointError,
        UnsupportedCheckpointError,
        SettingsError,
        TrainingDivergedError,
    ):
        assert issubclass(cls, DlmUserError), cls
    assert issubclass(DlmUserError, ValueError)  # code that caught ValueError still does
    assert issubclass(TrainingDivergedError, RuntimeError)  # and code that caught this one
    assert dlm.DlmUserError is DlmUserError


def test_a_mistyped_recipe_key_is_one_line_and_exit_2(capsys):
    assert main(["train", RECIPE, "optim.learnig_rate=1"]) == 2
    line = _one_line_error(capsys, "train")
    assert "optim.learnig_rate" in line and "did you mean 'optim.lr'" in line


def test_a_missing_recipe_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in _one_line_error(capsys, "train")


def test_a_missing_model_directory_is_one_line_and_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    assert main(["generate", "--model", str(missing), "--prompt", "12"]) == 2
    line = _one_line_error(capsys, "generate")
    assert str(missing) in line and "not a directory" in line
    assert main(["eval", "ppl", "--model", str(missing), "--data", "x.txt"]) == 2
    assert "not a directory" in _one_line_error(capsys, "eval ppl")


def test_a_directory_that_is_no_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["eval", "--model", str(tmp_path), "--task", "sudoku"]) == 2
    assert "not a dlm checkpoint" in _one_line_error(capsys, "eval")


def test_a_multi_line_message_still_prints_as_one_line(monkeypatch, capsys):
    import dlm.training

    def fail(*args, **kwargs):
        raise ConfigError("first line\n  second line")

    monkeypatch.setattr(dlm.training, "train", fail)
    assert main(["train", RECIPE]) == 2
    assert _one_line_error(capsys, "train").endswith("error: first line second line")


def test_dlm_debug_shows_the_user_error_traceback(monkeypatch):
    monkeypatch.setenv("DLM_DEBUG", "1")
    with pytest.raises(ConfigError, match="learnig_rate"):
        main(["train", RECIPE, "optim.learnig_rate=1"])


def test_a_bug_deep_inside_generate_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    import dlm.checkpoints.load

    def broken(*args, **kwargs):
        raise ValueError("boom")  # a plain ValueError is a bug, not a user mistake

    monkeypatch.setattr(dlm.checkpoints.load, "load_published", broken)
    tiny_model().save_pretrained(tmp_path / "model")
    with pytest.raises(ValueError, match="boom") as info:
        main(["generate", "--model", str(tmp_path / "model"), "--prompt", "12"])
    assert not isinstance(info.value, DlmUserError)
    assert "error:" not in capsys.readouterr().err  # nothing was printed as a user error


def test_a_key_error_inside_training_propagates(monkeypatch, capsys):
    import dlm.training.setup

    def broken(config):
        return {}["tokenizer"]  # a KeyError, as a real bug would raise it

    monkeypatch.setattr(dlm.training.setup, "prepare_data", broken)
    with pytest.raises(KeyError, match="tokenizer"):
        main(["train", RECIPE, "optim.max_steps=1", "progress=false"])
    assert "error:" not in capsys.readouterr().err


def test_a_bug_exits_non_2_with_a_traceback_as_a_process(tmp_path):
    """Through the real entry point: a bug's traceback reaches stderr and the status is 1."""
    import subprocess
    import sys

    script = (
        "import sys, dlm.cli.convert as c\n"
        "def broken(args): raise KeyError('internal')\n"
        "c.run = broken\n"
        "from dlm.cli.main import main\n"
        "sys.exit(main(['convert', 'a', 'b']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "KeyError: 'internal'" in done.stderr


def test_the_published_loader_error_is_a_user_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(NotADlmCheckpointError, match="matches no published format"):
        dlm.load_model(tmp_path)
