"""`dlm demo` on a shrunken budget: the whole pipeline, its JSON and its saved model."""

import json

from dlm.cli.main import main
from dlm.models import DiffusionLM


def test_demo_writes_json_and_a_loadable_model(tmp_path, capsys):
    out, report = tmp_path / "model", tmp_path / "demo.json"
    argv = [
        "demo",
        "--compare-ar",
        "--json",
        str(report),
        "--out",
        str(out),
        "optim.max_steps=4",
        "data.n_train=256",
        "data.n_eval=16",
        "model.num_layers=1",
        "model.hidden_size=32",
    ]
    assert main(argv) == 0
    data = json.loads(report.read_text())
    assert set(data) == {"task", "accuracy", "n_eval", "train_seconds", "params", "ar_accuracy"}
    assert data["task"] == "sudoku" and data["n_eval"] == 16
    assert 0.0 <= data["accuracy"] <= 1.0 and 0.0 <= data["ar_accuracy"] <= 1.0
    model = DiffusionLM.from_pretrained(out)
    assert sum(p.numel() for p in model.parameters()) == data["params"]
    printed = capsys.readouterr().out
    assert (
        "step 0" in printed
        and "diffusion accuracy" in printed
        and "autoregressive accuracy" in printed
    )


SMALL = [
    "optim.max_steps=2",
    "data.n_train=64",
    "data.n_eval=4",
    "model.num_layers=1",
    "model.hidden_size=32",
]


def test_demo_keeps_its_model_by_default_and_its_closing_command_works(
    tmp_path, monkeypatch, capsys
):
    import shlex

    monkeypatch.chdir(tmp_path)
    assert main(["demo", *SMALL]) == 0
    assert (tmp_path / "sudoku-model" / "dlm_config.json").is_file()
    printed = capsys.readouterr().out
    command = next(
        line.strip() for line in printed.splitlines() if line.strip().startswith("dlm generate")
    )
    argv = shlex.split(command)
    assert argv[:3] == ["dlm", "generate", "--model"]
    assert main(argv[1:]) == 0  # pasted as printed: the model's own length and sampler
    grid = capsys.readouterr().out.strip().splitlines()  # the answer as a 6x6 grid
    rows = [line for line in grid if "|" in line]
    assert len(grid) == 8 and len(rows) == 6 and grid[2] == grid[5] == "------+------"
    assert all(len(row.replace(" ", "").replace("|", "")) == 6 for row in rows)


def test_demo_no_save_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-save", *SMALL]) == 0
    assert not (tmp_path / "sudoku-model").exists()
