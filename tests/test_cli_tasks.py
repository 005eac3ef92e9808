"""``dlm task make`` and ``dlm eval`` end to end, and their user errors."""

from __future__ import annotations

import io
import json
import sys

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
        (["task", "make", "go"], "unknown task 'go'; available tasks:"),
        (["task", "make", "chess"], "make it with `dlm chess make"),
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


def test_eval_reports_each_requested_metric_overall_and_per_bucket(path_model, tmp_path, capsys):
    report_path = tmp_path / "metrics.json"
    argv = ["eval", "--model", str(path_model), "--steps", "4", "--json", str(report_path)]
    assert main([*argv, "--metric", "verify", "--metric", "paper"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if "paper" in line)
    assert header.split() == ["verify", "paper"]
    report = json.loads(report_path.read_text())
    metrics, per_bucket = report["metrics"], report["bucket_metrics"]
    assert list(metrics) == ["verify", "paper"]
    assert metrics["verify"] == report["accuracy"]
    # The path is unique, so the strict check passes only gold answers, which MGDM's judge
    # (gold or reversed) passes too.
    assert metrics["paper"] >= metrics["verify"]
    assert set(per_bucket) == set(report["buckets"])
    for label, bucket in report["buckets"].items():
        assert per_bucket[label]["verify"] == bucket["accuracy"]
    for name in metrics:  # the buckets' metrics average back to the overall value
        total = sum(per_bucket[k][name] * b["n"] for k, b in report["buckets"].items())
        assert total / report["n_eval"] == pytest.approx(metrics[name])
    # A comma list asks for the same metrics; without --metric only the verifier is reported.
    assert main([*argv, "--metric", "paper,verify"]) == 0
    assert list(json.loads(report_path.read_text())["metrics"]) == ["paper", "verify"]
    capsys.readouterr()
    assert main(argv) == 0
    assert "paper" not in capsys.readouterr().out
    assert json.loads(report_path.read_text())["metrics"] == {"verify": metrics["verify"]}


def test_eval_unknown_metric_is_a_one_line_error(path_model, capsys):
    argv = ["eval", "--model", str(path_model), "--metric", "verify,lenient"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "dlm eval: error: task 'path' has no metric 'lenient'; its metrics: verify, paper"
    ]
    assert "accuracy" not in captured.out  # nothing was evaluated


def test_eval_metric_values_on_scripted_answers(tmp_path, capsys, monkeypatch):
    """A stand-in model answers the gold path for half the graphs and the reversed path for the
    rest: the strict verifier passes half, MGDM's judge (gold or reversed) passes all."""
    import torch

    import dlm.cli.evaluate as evaluate
    import dlm.evaluation.task_eval as task_eval
    from dlm.data.char_tokenizer import EOS_ID
    from dlm.sampling import GenerationOutput
    from dlm.tasks.path import format_path, parse_edges

    task = get_task("path", nodes_per_chain=4)
    tok = task.tokenizer()
    examples = task.generate(8, seed=5)
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(e.to_json()) + "\n" for e in examples))

    answers = {}
    for i, e in enumerate(examples):
        edges = parse_edges(e.target)
        nodes = [edges[0][0]] + [v for _, v in edges]
        answers[e.prompt] = e.target if i % 2 == 0 else format_path(nodes[::-1])

    class Scripted:
        is_autoregressive = False
        generation_defaults: dict = {}

    def scripted_generate(model, input_ids, attention_mask, *, max_new_tokens, **options):
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            kept = [t for t, m in zip(ids, mask, strict=True) if m]
            row = tok.encode(answers[tok.decode(kept, skip_special_tokens=True)])
            row = row[: max_new_tokens - 1] + [EOS_ID]
            rows.append(row + [EOS_ID] * (max_new_tokens - len(row)))
        generated = torch.tensor(rows)
        seq = torch.cat([input_ids, generated], 1)
        return GenerationOutput(seq, input_ids.shape[1], 3, 0.1, int(generated.numel()))

    monkeypatch.setattr(evaluate, "load_model_and_tokenizer", lambda path, adapter=None: (Scripted(), tok))
    monkeypatch.setattr(task_eval, "generate", scripted_generate)
    out = tmp_path / "report.json"
    argv = ["eval", "--model", str(tmp_path), "--task", "path", "--option", "nodes_per_chain=4"]
    argv += ["--data", str(data), "--metric", "verify,paper", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["accuracy"] == 0.5 and report["correct"] == 4
    assert report["metrics"] == {"verify": 0.5, "paper": 1.0}
    expected = {}
    for i, e in enumerate(examples):
        tally = expected.setdefault(task.bucket(e), [0, 0])
        tally[0] += i % 2 == 0
        tally[1] += 1
    assert report["bucket_metrics"] == {
        label: {"verify": hits / n, "paper": 1.0} for label, (hits, n) in sorted(expected.items())
    }
    printed = capsys.readouterr().out
    assert "     all    50.0%   100.0%" in printed


def test_eval_save_examples_writes_each_answer_and_its_verdict(path_model, tmp_path, capsys):
    """The saved examples agree with the report: the same verdicts, buckets and metrics."""
    saved, report_path = tmp_path / "examples.jsonl", tmp_path / "report.json"
    argv = ["eval", "--model", str(path_model), "--steps", "4", "--json", str(report_path)]
    assert main([*argv, "--metric", "verify,paper", "--save-examples", str(saved)]) == 0
    records = [json.loads(line) for line in saved.read_text().splitlines()]
    report = json.loads(report_path.read_text())
    assert len(records) == report["n_eval"]
    assert set(records[0]) == {"prompt", "target", "output", "correct", "bucket", "metrics"}
    assert sum(r["correct"] for r in records) == report["correct"]
    for label, bucket in report["buckets"].items():
        mine = [r for r in records if r["bucket"] == label]
        assert len(mine) == bucket["n"] and sum(r["correct"] for r in mine) == bucket["correct"]
    paper = sum(r["metrics"]["paper"] for r in records) / len(records)
    assert paper == pytest.approx(report["metrics"]["paper"])
    assert all(r["metrics"]["verify"] == r["correct"] for r in records)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_eval_and_generate_show_progress_on_a_terminal_only(
    path_model, tmp_path, monkeypatch, terminal
):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": "1234"}) + "\n" for _ in range(3)))
    runs = {
        "eval": ["eval", "--model", str(path_model), "--steps", "2", "--n", "4"],
        "generate": [
            "generate",
            "--model",
            str(path_model),
            "--input",
            str(prompts),
            "--output",
            str(tmp_path / "out.jsonl"),
            "--steps",
            "2",
        ],
    }
    for name, argv in runs.items():
        stream = _Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        assert main(argv) == 0
        text = stream.getvalue()
        unit = "ex/s" if name == "eval" else "prompt/s"
        assert (unit in text) == terminal, (name, text)
        if name == "eval" and terminal:
            assert "eval path" in text and "4/4" in text and "acc=" in text


def test_train_keeps_the_held_out_split_and_eval_reads_it_instead_of_regenerating(
    path_model, monkeypatch, capsys
):
    from dlm.data import read_jsonl
    from dlm.tasks.path import PathTask
    from dlm.training import HELDOUT_NAME

    kept = [Example.from_json(r) for r in read_jsonl(path_model / HELDOUT_NAME)]
    _, regenerated = get_task("path", nodes_per_chain=4).held_out(64, 12, seed=0)
    assert kept == list(regenerated)  # the same split the recipe's seed makes

    def no_regeneration(*args, **kwargs):
        raise AssertionError("the kept held-out split should have been read")

    monkeypatch.setattr(PathTask, "held_out", no_regeneration)
    assert main(["eval", "--model", str(path_model), "--steps", "4", "--n", "5"]) == 0
    assert "/5)" in capsys.readouterr().out  # accuracy p% (c/5)
    with pytest.raises(AssertionError, match="kept held-out"):  # more than kept: regenerated
        main(["eval", "--model", str(path_model), "--steps", "4", "--n", "13"])
