"""``dlm task make`` and ``dlm eval`` end to end, and their user errors."""

from __future__ import annotations

import json

import pytest

from dlm.cli.main import main
from dlm.tasks import Example, get_task

TINY = [
    "data.task=path",
    "data.task_options={nodes_per_chain: 4}",
    "data.n_train=64",
    "data.n_eval=12",
    "model.hidden_size=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.max_positions=64",
    "optim.batch_size=8",
    "optim.max_steps=2",
    "progress=false",
]


@pytest.fixture(scope="module")
def path_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("path-run")
    assert main(["train", "recipes/sudoku/diffusion.yaml", *TINY, f"output_dir={out}"]) == 0
    return out / "model"


def test_task_make_writes_seeded_disjoint_splits(tmp_path, capsys):
    out = tmp_path / "cd3"
    argv = ["task", "make", "countdown", "--split", "cd3", "--n", "40", "--n-test", "10"]
    assert main([*argv, "--seed", "3", "--out", str(out)]) == 0
    assert "wrote 40 training and 10 test examples" in capsys.readouterr().out
    train = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    test = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert len(train) == 40 and len(test) == 10
    spec = json.loads((out / "task.json").read_text())
    assert spec["options"] == {"numbers": 3} and spec["seed"] == 3
    task = get_task("countdown", numbers=3)
    for record in train + test:
        example = Example.from_json(record)
        assert len(example.prompt.split(",")) == 4
        assert task.verify(example, example.target)
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    again = tmp_path / "again"
    assert main([*argv, "--seed", "3", "--out", str(again)]) == 0
    assert (again / "train.jsonl").read_text() == (out / "train.jsonl").read_text()


def test_eval_on_the_recipes_held_out_split(path_model, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    argv = ["eval", "--model", str(path_model), "--steps", "4", "--json", str(report_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "forward passes" in printed
    report = json.loads(report_path.read_text())
    assert report["task"] == "path" and report["n_eval"] == 12
    assert report["task_options"] == {"nodes_per_chain": 4}
    assert sum(b["n"] for b in report["buckets"].values()) == 12
    assert set(report["buckets"]) <= {"pd0", "pd1", "pd2", "pd3"}
    assert report["nfe"] > 0 and 0.0 <= report["accuracy"] <= 1.0


def test_eval_from_a_data_file_with_self_consistency(path_model, tmp_path, capsys):
    data = tmp_path / "path"
    assert (
        main(
            [
                "task",
                "make",
                "path",
                "--option",
                "nodes_per_chain=4",
                "--n",
                "5",
                "--n-test",
                "6",
                "--out",
                str(data),
            ]
        )
        == 0
    )
    report_path = tmp_path / "sc.json"
    argv = [
        "eval",
        "--model",
        str(path_model),
        "--task",
        "path",
        "--option",
        "nodes_per_chain=4",
        "--data",
        str(data / "test.jsonl"),
        "--samples",
        "3",
        "--vote",
        "--temperature",
        "1.0",
        "--steps",
        "4",
        "--seed",
        "0",
        "--json",
        str(report_path),
    ]
    assert main(argv) == 0
    report = json.loads(report_path.read_text())
    assert report["n_eval"] == 6 and report["samples"] == 3 and report["vote"] is True
    assert 0.0 <= report["sample_accuracy"] <= 1.0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["task", "make", "countdown", "--split", "cd9"], "has no split 'cd9'; its splits: cd3"),
        (["task", "make", "chess"], "unknown task 'chess'; available tasks:"),
        (["task", "make", "sat", "--option", "variables"], "key=value"),
    ],
)
def test_task_make_errors(argv, message, capsys, tmp_path):
    code = None
    try:
        code = main([*argv, "--out", str(tmp_path / "x")])
    except SystemExit as exit_:  # argparse rejects unknown choices itself
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_eval_errors(path_model, capsys):
    assert main(["eval", "--model", str(path_model), "--vote", "--samples", "1"]) == 2
    assert "voting needs several samples" in capsys.readouterr().err
    assert main(["eval", "--model", str(path_model), "--samples", "2"]) == 2
    assert "temperature" in capsys.readouterr().err
