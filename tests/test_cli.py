"""The command line end to end: train, generate, and the errors a user can cause."""

import json

import pytest

from dlm.cli.main import main

TINY = [
    "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
    "data.n_train=64",
    "data.n_eval=8",
    "model.hidden_size=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.max_positions=40",
    "optim.batch_size=8",
    "optim.max_steps=3",
    "progress=false",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "recipes/sudoku/diffusion.yaml", *TINY, f"output_dir={out}"]) == 0
    return out / "model"


def test_train_then_generate_from_prompt(trained, capsys):
    assert (
        main(
            [
                "generate",
                "--model",
                str(trained),
                "--prompt",
                "1234341221434321".replace("1", "0", 3),
                "--max-new-tokens",
                "17",
                "--steps",
                "4",
                "--raw",  # the flat string (a task model prints its grid otherwise)
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(out) <= 17 and set(out) <= set("0123456789")


def test_generate_batch_from_jsonl(trained, tmp_path):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(
        '{"prompt": "1200340000000000", "id": 1}\n{"prompt": "0000000000004321", "id": 2}\n'
    )
    assert (
        main(
            [
                "generate",
                "--model",
                str(trained),
                "--input",
                str(src),
                "--output",
                str(dst),
                "--max-new-tokens",
                "17",
                "--policy",
                "margin",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2] and all("output" in r for r in rows)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["train", "recipes/sudoku/diffusion.yaml", "optim.learnig_rate=1"],
            "did you mean 'optim.lr'",
        ),
        (["train", "recipes/nope.yaml"], "does not exist"),
        (["generate", "--model", "recipes", "--prompt", "1"], "is not a dlm checkpoint"),
    ],
)
def test_user_errors_print_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_empty_data_file_and_prompt_too_long(trained, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert (
        main(
            [
                "train",
                "recipes/sudoku/diffusion.yaml",
                *TINY,
                "data.task=null",
                f"data.train_file={empty}",
                f"data.tokenizer={trained}",
                f"output_dir={tmp_path}",
            ]
        )
        == 2
    )
    assert "is empty" in capsys.readouterr().err
    assert (
        main(["generate", "--model", str(trained), "--prompt", "1" * 30, "--max-new-tokens", "17"])
        == 2
    )
    assert "exceeds the model's 40 positions" in capsys.readouterr().err


def test_generate_with_fast_sampling_options_and_stream(trained, capsys):
    base = [
        "generate",
        "--model",
        str(trained),
        "--prompt",
        "1200340000000000",
        "--max-new-tokens",
        "17",
    ]
    assert (
        main(
            [
                *base,
                "--block-length",
                "4",
                "--cache",
                "dual",
                "--threshold",
                "0.9",
                "--eos-penalty",
                "1",
            ]
        )
        == 0
    )
    assert main([*base, "--steps", "5", "--block-length", "4", "--stream"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert lines[0].startswith("step   0") and "·" not in lines[-1]
    assert (
        sum(int(line.split()[2].lstrip("+")) for line in lines) == 17
    )  # each position committed once


def test_chat_template_wraps_prompts(trained, tmp_path, capsys):
    from transformers import AutoTokenizer

    from dlm.cli.generate import apply_chat_template

    tokenizer = AutoTokenizer.from_pretrained(trained)
    with pytest.raises(ValueError, match="no chat template|has none"):
        apply_chat_template(tokenizer, [{"prompt": "12"}])
    assert main(["generate", "--model", str(trained), "--prompt", "12", "--chat"]) == 2
    assert "chat template" in capsys.readouterr().err
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}|{% endfor %}"
    records = apply_chat_template(
        tokenizer, [{"prompt": "12"}, {"messages": [{"role": "user", "content": "3"}], "id": 5}]
    )
    assert [r["prompt"] for r in records] == ["12|", "3|"]
    assert records[1]["id"] == 5


def test_sampler_flags_of_generate_and_eval_are_every_settings_field():
    from dlm.cli.main import build_parser
    from dlm.sampling import SamplerSettings

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("generate", "eval"):
        group = next(g for g in subparsers[command]._action_groups if g.title.startswith("sampler"))
        assert {a.dest for a in group._group_actions} == set(SamplerSettings.field_names())


def test_print_settings_shows_each_value_and_its_source(trained, capsys):
    import json as _json

    config = trained / "dlm_config.json"
    saved = _json.loads(config.read_text())
    config.write_text(_json.dumps({**saved, "generation": {"steps": 5, "temperature": 0.3}}))
    try:
        argv = ["generate", "--model", str(trained), "--print-settings", "--steps", "7"]
        assert main(argv + ["--no-stop-at-eos"]) == 0
    finally:
        config.write_text(_json.dumps(saved))
    lines = {line.split("=")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert lines["steps"].endswith("(argument)") and "= 7" in lines["steps"]
    assert lines["temperature"].endswith("(checkpoint)") and "0.3" in lines["temperature"]
    assert lines["max_new_tokens"].endswith("(command default)") and "64" in lines["max_new_tokens"]
    assert lines["stop_at_eos"].endswith("(argument)") and "False" in lines["stop_at_eos"]
    assert lines["policy"].endswith("(default)")


def test_generate_without_prompts_is_a_clear_error(trained, capsys):
    assert main(["generate", "--model", str(trained)]) == 2
    assert "give the prompts: --prompt TEXT or --input FILE.jsonl" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys):
    import dlm

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"dlm {dlm.__version__}"


def test_top_level_help_lists_every_command_without_importing_torch():
    """``dlm --help`` builds only the command list: no command's flags, so no torch import."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from dlm.cli.main import COMMANDS, main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for command in ("demo", "train", "generate", "convert", "task", "eval"):
        assert command in done.stdout
    assert "TORCH False" in done.stdout


def test_a_task_model_carries_its_answer_length_and_a_flag_overrides_it(trained, capsys):
    """A model trained on a task saves the task's answer length as its default
    max_new_tokens, so `dlm generate` fits without a flag; an explicit flag still wins."""
    import json as _json

    saved = _json.loads((trained / "dlm_config.json").read_text())
    assert saved["generation"]["max_new_tokens"] == 17  # 4x4 Sudoku: 16 cells and [EOS]
    capsys.readouterr()
    assert main(["generate", "--model", str(trained), "--prompt", "1", "--print-settings"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("max_new_tokens"))
    assert "= 17" in line and line.endswith("(checkpoint)")
    argv = ["generate", "--model", str(trained), "--prompt", "1", "--print-settings"]
    assert main([*argv, "--max-new-tokens", "5"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("max_new_tokens"))
    assert "= 5" in line and line.endswith("(argument)")


@pytest.mark.parametrize(
    "error, needle",
    [
        (
            ConnectionError("Couldn't reach 'EleutherAI/x' on the Hub"),
            "run where the Hub is reachable",
        ),
        (__import__("dlm").DlmUserError("model_args: mc_num must be at least 1"), "mc_num"),
    ],
)
def test_lm_eval_offline_or_a_bad_model_arg_is_one_line(monkeypatch, capsys, error, needle):
    import lm_eval.__main__

    from dlm.cli.eval_lm import run_lm_eval

    def fails():
        raise error

    monkeypatch.setattr(lm_eval.__main__, "cli_evaluate", fails)
    assert run_lm_eval(["--model", "dlm", "--tasks", "x"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("dlm eval lm-eval: error: ") and needle in lines[0]
    )


def test_allow_unk_samples_a_prompt_outside_the_alphabet(trained, capsys):
    argv = ["generate", "--model", str(trained), "--prompt", "12.", "--steps", "1"]
    assert main(argv) == 2
    assert "'.' is not in the model's vocabulary" in capsys.readouterr().err
    assert main([*argv, "--allow-unk"]) == 0


def test_train_prints_a_header_with_the_model_size_and_where_things_go(tmp_path, capsys):
    from dlm.models import DiffusionLM

    argv = ["train", "recipes/sudoku/diffusion.yaml", *TINY, "optim.max_steps=1"]
    assert main([*argv, f"output_dir={tmp_path}"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    params = sum(p.numel() for p in DiffusionLM.from_pretrained(tmp_path / "model").parameters())
    assert header.startswith("dlm train: sft on sudoku, ") and f"{params:,} parameters" in header
    assert f"tensorboard --logdir {tmp_path / 'logs'}" in header and "from step 0" in header
