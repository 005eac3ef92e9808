"""Training on the files ``dlm task make`` writes: the task brings the tokenizer and the checks."""

import json

import pytest

from dlm.cli.main import main
from dlm.config import ConfigError
from dlm.tasks import Example
from dlm.training import load_train_config, prepare_data
from helpers import TINY_MODEL

SMALL = [
    *TINY_MODEL,
    "model.max_positions=64",
    "optim.batch_size=8",
    "optim.max_steps=2",
    "progress=false",
]


@pytest.fixture(scope="module")
def cd3_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("cd3")
    argv = ["task", "make", "countdown", "--split", "cd3", "--n", "40", "--n-test", "6"]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    return out


def test_task_with_train_file_reads_the_files_with_the_tasks_tokenizer(cd3_files):
    config = load_train_config(
        "recipes/countdown/cd3.yaml",
        [
            f"data.train_file={cd3_files / 'train.jsonl'}",
            f"data.eval_file={cd3_files / 'test.jsonl'}",
            "data.n_eval=4",
        ],
    )
    prepared = prepare_data(config)
    records = [json.loads(line) for line in (cd3_files / "train.jsonl").read_text().splitlines()]
    assert len(prepared.train) == 40
    assert prepared.task is not None and prepared.task.name == "countdown"
    test = [
        Example.from_json(json.loads(x))
        for x in (cd3_files / "test.jsonl").read_text().splitlines()
    ]
    assert prepared.eval_examples == test[:4]
    first = prepared.tokenizer.decode(prepared.train.input_ids[0], skip_special_tokens=True)
    assert first.replace(" ", "") == (records[0]["prompt"] + records[0]["target"]).replace(" ", "")


def test_train_then_eval_on_task_files_end_to_end(cd3_files, tmp_path, capsys):
    out = tmp_path / "run"
    overrides = [
        f"data.train_file={cd3_files / 'train.jsonl'}",
        f"data.eval_file={cd3_files / 'test.jsonl'}",
        f"output_dir={out}",
        *SMALL,
    ]
    assert main(["train", "recipes/countdown/cd3.yaml", *overrides]) == 0
    report = tmp_path / "report.json"
    argv = ["eval", "--model", str(out / "model"), "--steps", "4", "--json", str(report)]
    assert main(argv) == 0
    assert json.loads(report.read_text())["n_eval"] == 6  # the test file, kept beside the model


def test_task_files_with_pretrain_or_a_corpus_are_refused(cd3_files):
    with pytest.raises(ConfigError, match="objective=sft"):
        prepare_data(
            load_train_config(
                "recipes/countdown/cd3.yaml",
                [f"data.train_file={cd3_files / 'train.jsonl'}", "objective=pretrain"],
            )
        )
    with pytest.raises(ConfigError, match="only one of"):
        prepare_data(load_train_config("recipes/countdown/cd3.yaml", ["data.corpus=python-stdlib"]))
