"""Every shell command of README.md, and every ```python block, is run here, so a README line
that fails fails CI.

``TABLE`` has one entry per command of the README (``readme_commands``: the ```bash blocks and
inline ``huggingface-cli ...``-style spans), keyed by the command's normalised text and kept in
README order; ``test_the_table_is_the_readme`` fails on a README command without an entry and
on an entry the README no longer has. Each entry says how CI runs the command:

- ``dlm``: the same argv through ``dlm.cli.main.main`` in one shared working directory (with
  ``recipes/`` linked in), so a path that an earlier README command writes (``sudoku-model``,
  ``runs/path-diffusion/model``, ``data/cd3``) is that command's output. ``~`` is the stand-in
  home whose ``models/`` holds tiny Dream- and LLaDA-format checkpoints;
- ``launcher``: a subprocess of ``accelerate launch`` / ``torchrun`` on the CPU;
- ``not run``: a line CI runs itself or one that needs the network, with the check of what
  replaces it.

Whatever an entry changes (``append``: the shortening overrides of ``dlm train`` and ``dlm
demo``; ``replace``: argv pieces swapped; ``before``: files written or models trained first)
its ``reason`` says, and every run checks the exit status and one thing the command produced.
``PYTHON_BLOCKS`` does the same for the README's Python code, executed in order in one
namespace.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import dlm
from dlm.cli.main import main
from helpers import TINY_MODEL
from readme_commands_helpers import (
    python_blocks,
    readme_commands,
    split_commands,
    write_arc_like_task,
    write_fake_dream,
    write_fake_llada,
    write_notes,
    write_sudoku_prompts,
)

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

#: Appended to every ``dlm train`` run: the tiny model, 2 steps, a few examples, no bar.
TRAIN = (
    *TINY_MODEL,
    "optim.max_steps=2",
    "optim.batch_size=8",
    "data.n_train=32",
    "data.n_eval=4",
    "progress=false",
)
#: Appended to ``dlm demo``: tests/test_demo.py's shortened demo (its ``SMALL``).
DEMO = (
    "optim.max_steps=2",
    "data.n_train=64",
    "data.n_eval=4",
    "model.num_layers=1",
    "model.hidden_size=32",
)
#: Appended to the README's GRPO runs: 2 steps of 2 prompts x 2 rollouts, a few examples.
RL = (
    "optim.max_steps=2",
    "optim.batch_size=2",
    "rl.group_size=2",
    "data.n_train=32",
    "data.n_eval=4",
    "progress=false",
)
RL_SHORT = "shortened: 2 steps of 2 prompts x 2 rollouts on 32 examples (from runs/rl-sft/model)"
SHORT = "shortened: the tiny model (width 32, 1 layer), 2 steps on 32 examples"
DEMO_SHORT = "shortened as tests/test_demo.py does: width 32, 1 layer, 2 steps on 64 puzzles"


@dataclass(frozen=True)
class Work:
    """Where the README's commands run: ``root`` is their working directory, ``home`` what
    ``~`` stands for (``home/models`` holds the stand-in checkpoints)."""

    root: Path
    home: Path


@dataclass(frozen=True)
class Ran:
    rc: int
    out: str
    err: str
    root: Path  # the working directory
    home: Path  # what ~ stood for


Check = Callable[[Ran], None]
Step = Callable[[Path], None]


@dataclass(frozen=True)
class Entry:
    command: str  # the README's text, normalised (readme_commands)
    how: str  # "dlm" (in-process main), "launcher" (a subprocess), "server" or "not run"
    checks: tuple[Check, ...]
    reason: str = ""  # how the CI run differs from the README line, and why; "" = verbatim
    append: tuple[str, ...] = ()  # arguments added at the end (shortening overrides)
    replace: tuple[tuple[str, str], ...] = ()  # argv pieces swapped (each must be present)
    before: tuple[Step, ...] = ()  # run first in the working directory
    env: tuple[tuple[str, str], ...] = ()  # environment of the run
    cut_corpus: bool = False  # the python-stdlib corpus cut to a few files (monkeypatched)


# ---------------------------------------------------------------- checks
def wrote(*paths: str) -> Check:
    def check(ran: Ran) -> None:
        for path in paths:
            assert (ran.root / path).exists(), f"{path} was not written"

    return check


def printed(*texts: str) -> Check:
    def check(ran: Ran) -> None:
        for text in texts:
            assert text in ran.out, f"{text!r} not in the output:\n{ran.out[-2000:]}"

    return check


def said(*texts: str) -> Check:
    def check(ran: Ran) -> None:
        for text in texts:
            assert text in ran.err, f"{text!r} not on stderr:\n{ran.err[-2000:]}"

    return check


def recipe_value(model_dir: str, dotted: str, expected: object) -> Check:
    """The run's saved ``train_config.yaml`` holds ``expected`` at ``dotted``."""

    def check(ran: Ran) -> None:
        value = yaml.safe_load((ran.root / model_dir / "train_config.yaml").read_text())
        for key in dotted.split("."):
            value = value[key]
        assert value == expected, f"{dotted} = {value!r}"

    return check


def dlm_config(model_dir: str, key: str, expected: object) -> Check:
    def check(ran: Ran) -> None:
        config = json.loads((ran.root / model_dir / "dlm_config.json").read_text())
        assert config[key] == expected, f"{key} = {config[key]!r}"

    return check


def jsonl_records(path: str, count: int, keys: set[str]) -> Check:
    def check(ran: Ran) -> None:
        records = [json.loads(line) for line in (ran.root / path).read_text().splitlines()]
        assert len(records) == count
        assert all(keys <= set(record) for record in records), records[0]

    return check


def sudoku_grid(ran: Ran) -> None:
    """The answer printed as a 6x6 grid: 6 rows of 6 cells, a rule after rows 2 and 4."""
    lines = ran.out.strip().splitlines()
    rows = [line for line in lines if "|" in line]
    assert len(lines) == 8 and len(rows) == 6 and lines[2] == lines[5] == "------+------"
    assert all(len(row.replace(" ", "").replace("|", "")) == 6 for row in rows)


def demo_json(ran: Ran) -> None:
    report = json.loads((ran.root / "demo.json").read_text())
    assert report["task"] == "sudoku" and report["n_eval"] == 4
    assert 0.0 <= report["ar_accuracy"] <= 1.0


def png(path: str) -> Check:
    def check(ran: Ran) -> None:
        assert (ran.root / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    return check


def at_most_forward_passes(limit: int) -> Check:
    def check(ran: Ran) -> None:
        (nfe,) = re.findall(r"cost: (\d+) forward passes", ran.out)
        assert 0 < int(nfe) <= limit

    return check


def streamed(ran: Ran) -> None:
    steps = [line for line in ran.out.splitlines() if line.startswith("step")]
    assert len(steps) >= 1 and "forward passes" in ran.err


def _ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [c for line in lines if not line.startswith("#") for c in split_commands(line)]


def in_ci(command: str) -> Check:
    def check(ran: Ran) -> None:
        assert command in _ci_commands(), f"{command!r} is not a command of .ci/run"

    return check


def dream_at_local_dir(ran: Ran) -> None:
    """The download's --local-dir holds the Dream stand-in, the folder `dlm convert` reads."""
    from dlm.checkpoints import detect_format

    (command,) = [e.command for e in TABLE if e.command.startswith("huggingface-cli")]
    local = shlex.split(command)[shlex.split(command).index("--local-dir") + 1]
    assert local.startswith("~/")
    folder = ran.home / local[2:]
    assert detect_format(folder) == "dream"
    assert any(e.command.startswith(f"dlm convert {local} ") for e in TABLE)


# ---------------------------------------------------------------- steps run first
def trained(recipe: str) -> Step:
    """``dlm train RECIPE`` shortened: a model the README evaluates but never trains."""

    def step(root: Path) -> None:
        assert main(["train", recipe, *TRAIN]) == 0

    step.__name__ = f"trained({recipe})"
    return step


def prompts_file(root: Path) -> None:
    write_sudoku_prompts(root / "prompts.jsonl")


def notes_file(root: Path) -> None:
    write_notes(root / "notes.txt")


def arc_like_task(root: Path) -> None:
    write_arc_like_task(root / "lm-tasks", "readme_arc_easy")


# ---------------------------------------------------------------- the table, in README order
#: Appended to the chess recipes' dlm train: TRAIN on the few positions of the tiny data.
CHESS_TRAIN = (*TRAIN, "data.n_train=8", "data.n_eval=2")
CHESS_SHORT = SHORT.replace("32 examples", "8 positions") + " of the shortened dlm chess make"


def extra_in_test(name: str) -> Check:
    def check(ran: Ran) -> None:
        """The test extras CI installs include every package of extra ``name``."""
        tomllib = pytest.importorskip("tomllib")  # Python 3.11+
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert set(extras[name]) <= set(extras["test"])

    return check


chess_extra_in_test = extra_in_test("chess")


def served(ran: Ran) -> None:
    """The server answered /v1/models and a completion (``_serve`` prints both)."""
    models, completion = (json.loads(line) for line in ran.out.splitlines()[-2:])
    assert models["object"] == "list" and models["data"][0]["id"] == "sudoku-model"
    assert completion["object"] == "text_completion" and completion["choices"][0]["finish_reason"]


CI_RUNS_IT = "CI runs this line itself (.ci/run)"
TABLE: tuple[Entry, ...] = (
    Entry(
        "pip install torch==2.13.0", "not run", (in_ci("pip install torch==2.13.0"),), CI_RUNS_IT
    ),
    Entry(
        "pip install -e .",
        "not run",
        (in_ci('pip install -e ".[test]"'),),
        'CI installs the same package with its test extras, pip install -e ".[test]" (.ci/run)',
    ),
    Entry(
        "dlm demo",
        "dlm",
        (wrote("sudoku-model/dlm_config.json"), printed("diffusion accuracy")),
        DEMO_SHORT,
        append=DEMO,
    ),
    Entry('pip install -e ".[test]"', "not run", (in_ci('pip install -e ".[test]"'),), CI_RUNS_IT),
    Entry(
        "python -m pytest",
        "not run",
        (in_ci("python -m pytest"),),
        CI_RUNS_IT + ": the whole suite, this module included",
    ),
    Entry(
        "dlm demo --compare-ar --json demo.json --out sudoku-model",
        "dlm",
        (demo_json, printed("autoregressive accuracy")),
        DEMO_SHORT,
        append=DEMO,
    ),
    Entry(
        "dlm train recipes/sudoku/diffusion.yaml optim.lr=3e-4",
        "dlm",
        (recipe_value("runs/sudoku-diffusion/model", "optim.lr", 3e-4),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/sudoku/ar.yaml",
        "dlm",
        (dlm_config("runs/sudoku-ar/model", "attention", "causal"),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/text/stdlib-char.yaml",
        "dlm",
        (printed("pretrain on python-stdlib"), wrote("runs/stdlib-char/model/dlm_config.json")),
        SHORT + ", 64-character windows (data.seq_len=64, model.max_positions=64) of the first "
        "8 standard-library files of each split (python_stdlib_files monkeypatched: reading "
        "and packing all of them takes about 25 s)",
        append=(*TRAIN, "data.seq_len=64", "model.max_positions=64"),
        cut_corpus=True,
    ),
    Entry(
        "dlm train recipes/sudoku/diffusion.yaml eval_every=100",
        "dlm",
        (printed("step 2: held-out loss", "accuracy"),),
        SHORT + "; eval_every=2 eval_examples=4 after the README's eval_every=100, which a "
        "2-step run never reaches",
        append=(*TRAIN, "eval_every=2", "eval_examples=4"),
    ),
    Entry(
        "dlm plot runs/sudoku-diffusion runs/sudoku-ar --out curves.png",
        "dlm",
        (png("curves.png"),),
    ),
    Entry(
        "dlm generate --model sudoku-model --prompt 506002240050000300130065052140001023 "
        "--policy margin",
        "dlm",
        (sudoku_grid,),
        "sudoku-model is the shortened demo's model (dlm demo --compare-ar above)",
    ),
    Entry(
        "dlm generate --model sudoku-model --input prompts.jsonl --output answers.jsonl",
        "dlm",
        (jsonl_records("answers.jsonl", 2, {"prompt", "output", "rendered"}),),
        "prompts.jsonl is written first: two puzzles of the demo's distribution",
        before=(prompts_file,),
    ),
    Entry("dlm --version", "dlm", (printed(f"dlm {dlm.__version__}"),)),
    Entry("dlm --help", "dlm", (printed("usage: dlm", "demo", "generate"),)),
    Entry(
        "dlm generate --model sudoku-model --prompt 506002240050000300130065052140001023 "
        "--threshold 0.99 --stream",
        "dlm",
        (streamed,),
    ),
    Entry(
        "dlm convert ~/models/Dream-v0-Instruct-7B dream-instruct",
        "dlm",
        (printed("as a dream checkpoint"), wrote("dream-instruct/dlm_config.json")),
        "~/models/Dream-v0-Instruct-7B is a tiny Dream-format stand-in (write_fake_dream: "
        "Dream's config.json, Qwen2 weights at width 32, a byte-level tokenizer with a chat "
        "template), as the download cannot run offline",
    ),
    Entry(
        'dlm generate --model dream-instruct --prompt "Write a haiku" --chat --max-new-tokens 64',
        "dlm",
        (said("batch of 1: "),),
        "dream-instruct is the converted stand-in",
    ),
    Entry(
        "accelerate launch -m dlm.cli.main train recipes/sudoku/diffusion.yaml",
        "launcher",
        (printed("on 1 process(es), cpu"), wrote("runs/sudoku-diffusion/model/dlm_config.json")),
        SHORT + "; a subprocess of accelerate's CLI (python -m accelerate.commands.accelerate_cli,"
        " what the accelerate script runs) on the CPU (ACCELERATE_USE_CPU=1) with accelerate's "
        "default of one process: CI has no GPUs",
        append=TRAIN,
    ),
    Entry(
        "ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m dlm.cli.main train "
        "recipes/sudoku/diffusion.yaml",
        "launcher",
        (printed("on 2 process(es), cpu"), wrote("runs/sudoku-diffusion/model/dlm_config.json")),
        SHORT + "; a subprocess of python -m torch.distributed.run (what the torchrun script "
        "runs), two CPU processes over gloo as in tests/training/test_distributed.py",
        append=TRAIN,
    ),
    Entry(
        "huggingface-cli download Dream-org/Dream-v0-Instruct-7B --local-dir "
        "~/models/Dream-v0-Instruct-7B",
        "not run",
        (dream_at_local_dir,),
        "network: replaced by the tiny fake Dream folder (write_fake_dream at its --local-dir)",
    ),
    Entry(
        'pip install -e ".[serve]"',
        "not run",
        (extra_in_test("serve"),),
        "CI installs the test extras (.ci/run), which hold the serve extra's packages",
    ),
    Entry(
        "dlm serve --model sudoku-model --port 8000",
        "server",
        (served,),
        "a subprocess on a free port (8000 may be taken), asked for /v1/models and one "
        "completion, then stopped with SIGTERM",
    ),
    Entry(
        "dlm task make countdown --split cd3 --n 50000 --n-test 500 --out data/cd3",
        "dlm",
        (
            jsonl_records("data/cd3/train.jsonl", 64, {"prompt", "target"}),
            jsonl_records("data/cd3/test.jsonl", 8, {"prompt", "target"}),
        ),
        "shortened: 64 training and 8 test examples instead of 50,000 and 500",
        replace=(("--n 50000", "--n 64"), ("--n-test 500", "--n-test 8")),
    ),
    Entry(
        "dlm train recipes/countdown/cd3.yaml data.train_file=data/cd3/train.jsonl "
        "data.eval_file=data/cd3/test.jsonl",
        "dlm",
        (
            recipe_value("runs/cd3-diffusion/model", "data.train_file", "data/cd3/train.jsonl"),
            wrote("runs/cd3-diffusion/model/heldout.jsonl"),
        ),
        SHORT + ", on the files dlm task make wrote above",
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/path/diffusion.yaml",
        "dlm",
        (dlm_config("runs/path-diffusion/model", "attention", "bidirectional"),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/path/ar.yaml",
        "dlm",
        (dlm_config("runs/path-ar/model", "attention", "causal"),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm eval --model runs/path-diffusion/model",
        "dlm",
        (printed("accuracy 0", "pd0:"),),
        "the model is the shortened dlm train recipes/path/diffusion.yaml's, its 4 held-out "
        "examples",
    ),
    Entry(
        "dlm train recipes/path/adapted.yaml",
        "dlm",
        (
            recipe_value("runs/path-adapted/model", "model.init", "runs/path-ar/model"),
            dlm_config("runs/path-adapted/model", "attention", "annealed"),
        ),
        SHORT + ", continuing the shortened runs/path-ar/model above",
        append=TRAIN,
    ),
    Entry(
        "dlm eval --model runs/cd3-diffusion/model --policy remask --steps 20",
        "dlm",
        (at_most_forward_passes(20),),
        "the model is the shortened dlm train recipes/countdown/cd3.yaml's",
    ),
    Entry(
        "dlm eval --model runs/mult4-diffusion/model --samples 5 --vote --temperature 0.5",
        "dlm",
        (printed("SC@5"),),
        "no README command trains runs/mult4-diffusion/model: the test trains its recipe, "
        "recipes/multiplication/4x4.yaml, shortened, first",
        before=(trained("recipes/multiplication/4x4.yaml"),),
    ),
    Entry(
        "dlm eval --model runs/mult4-multipass/model --multipass --max-new-tokens 24",
        "dlm",
        (printed("accuracy"),),
        "no README command trains runs/mult4-multipass/model: the test trains its recipe, "
        "recipes/multiplication/4x4-multipass.yaml, shortened (max_positions 160 kept), first",
        before=(trained("recipes/multiplication/4x4-multipass.yaml"),),
    ),
    Entry(
        "dlm eval --model runs/cd3-diffusion/model --metric verify --metric lenient",
        "dlm",
        (printed("verify  lenient"),),
        "the model is the shortened dlm train recipes/countdown/cd3.yaml's",
    ),
    Entry(
        "dlm eval --model runs/path-diffusion/model --save-examples answers.jsonl",
        "dlm",
        (jsonl_records("answers.jsonl", 4, {"prompt", "target", "output", "correct", "bucket"}),),
        "the model is the shortened dlm train recipes/path/diffusion.yaml's (4 held-out "
        "examples); answers.jsonl, dlm generate --output's above, is replaced",
    ),
    Entry("apt-get update", "not run", (in_ci("apt-get update"),), CI_RUNS_IT),
    Entry(
        "apt-get install -y stockfish",
        "not run",
        (in_ci("apt-get install -y stockfish"),),
        CI_RUNS_IT + " (when no Stockfish is installed)",
    ),
    Entry(
        'pip install -e ".[chess]"',
        "not run",
        (chess_extra_in_test,),
        'CI installs the test extras (.ci/run), which hold the chess extra\'s packages',
    ),
    Entry(
        "dlm chess make --games 10000 --workers 2 --out data/chess",
        "dlm",
        (wrote("data/chess/settings.json", "data/chess/shards/00000-00003.jsonl"),),
        "shortened: 4 games of at most 20 plies at 50 nodes, every second game held out, one worker",
        replace=(("--games 10000", "--games 4"), ("--workers 2", "--workers 1")),
        append=("--nodes", "50", "--max-plies", "20", "--test-every", "2"),
    ),
    *(
        Entry(
            f"dlm train recipes/chess/{agent}.yaml",
            "dlm",
            (recipe_value(f"runs/chess-{agent}/model", "data.task_options.agent", agent),),
            CHESS_SHORT,
            append=CHESS_TRAIN,
        )
        for agent in ("diffusearch", "s-a", "s-v", "sa-v")
    ),
    Entry(
        "dlm chess puzzles --data data/chess --out data/chess/puzzles.csv --max 1000",
        "dlm",
        (wrote("data/chess/puzzles.csv"), printed("puzzles from")),
        "shortened: at most 3 puzzles, 2,000-node searches",
        replace=(("--max 1000", "--max 3"),),
        append=("--nodes", "2000"),
    ),
    Entry(
        "dlm chess eval --agents runs/chess-diffusearch/model runs/chess-s-a/model "
        "runs/chess-s-v/model runs/chess-sa-v/model mcts --data data/chess --puzzles "
        "data/chess/puzzles.csv --out runs/chess-eval",
        "dlm",
        (wrote("runs/chess-eval/report.json", "runs/chess-eval/games.pgn"), printed("Action accuracy", "Elo")),
        "shortened: 4 positions, 2 games per pairing of at most 12 plies, the random anchor, "
        "8 MCTS simulations, 4 DiffuSearch steps",
        append=("--positions", "4", "--games", "2", "--anchors", "random", "--max-plies", "12",
                "--simulations", "8", "--steps", "4", "--quiet"),
    ),
    Entry(
        "dlm chess play --model runs/chess-diffusearch/model",
        "dlm",
        (wrote("game.pgn"),),
        "stdin is empty here: the game stops at its first prompt and saves its PGN",
    ),
    Entry(
        "dlm train recipes/peft/base.yaml",
        "dlm",
        (wrote("runs/peft-base/model/dlm_config.json"),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/peft/prolora.yaml",
        "dlm",
        (
            wrote("runs/peft-prolora/model/adapter.safetensors"),
            recipe_value("runs/peft-prolora/model", "peft.method", "prolora"),
            printed("trainable parameters = 0.400 x LoRA r=10"),
        ),
        "shortened: 2 steps on 32 examples (the base's size comes from runs/peft-base/model)",
        append=TRAIN,
    ),
    Entry(
        "dlm eval --model runs/peft-prolora/model --metric sum_accuracy",
        "dlm",
        (printed("sum_accuracy"),),
    ),
    Entry(
        "dlm eval --model runs/peft-base/model --adapter runs/peft-prolora/model --metric sum_accuracy",
        "dlm",
        (printed("sum_accuracy"),),
    ),
    Entry(
        "dlm peft merge --adapter runs/peft-prolora/model --out runs/peft-merged",
        "dlm",
        (wrote("runs/peft-merged/dlm_config.json", "runs/peft-merged/model.safetensors"),),
    ),
    Entry(
        "dlm peft export --adapter runs/peft-prolora/model --out runs/peft-export",
        "dlm",
        (wrote("runs/peft-export/adapter_config.json", "runs/peft-export/adapter_model.safetensors"),),
    ),
    Entry(
        "dlm train recipes/rl/sft.yaml",
        "dlm",
        (wrote("runs/rl-sft/model/dlm_config.json"),),
        SHORT,
        append=TRAIN,
    ),
    Entry(
        "dlm train recipes/rl/grpo.yaml",
        "dlm",
        (
            wrote("runs/rl-grpo/model/dlm_config.json"),
            recipe_value("runs/rl-grpo/model", "objective", "grpo"),
            printed("grpo (coupled estimator"),
        ),
        RL_SHORT,
        append=RL,
    ),
    Entry(
        "dlm train recipes/rl/grpo.yaml rl.estimator=weighted output_dir=runs/rl-wd1",
        "dlm",
        (
            wrote("runs/rl-wd1/model/dlm_config.json"),
            recipe_value("runs/rl-wd1/model", "rl.estimator", "weighted"),
        ),
        RL_SHORT,
        append=RL,
    ),
    Entry(
        "dlm eval --model runs/rl-grpo/model",
        "dlm",
        (printed("accuracy"),),
    ),
    Entry(
        "dlm convert ~/models/Dream-Coder-v0-Base-7B dream-coder-7b",
        "dlm",
        (printed("as a dream checkpoint"), wrote("dream-coder-7b/dlm_config.json")),
        "~/models/Dream-Coder-v0-Base-7B is the tiny Dream-format stand-in (write_fake_dream), "
        "as 7B weights cannot be downloaded in CI",
    ),
    Entry(
        "dlm eval code --model dream-coder-7b --samples 1 --max-new-tokens 512 --steps 512 "
        "--out humaneval.jsonl",
        "dlm",
        (printed("pass@1"), wrote("humaneval.jsonl")),
        "shortened: 2 problems, 8 new tokens in 8 steps",
        replace=(("--max-new-tokens 512", "--max-new-tokens 8"), ("--steps 512", "--steps 8")),
        append=("--problems", "2"),
    ),
    Entry(
        "dlm eval code --model dream-coder-7b --samples 10 --k 1,10 --temperature 0.8 --top-p 0.95",
        "dlm",
        (printed("pass@1", "pass@10"),),
        "shortened: 2 problems, 8 new tokens in 8 steps",
        append=("--problems", "2", "--max-new-tokens", "8", "--steps", "8"),
    ),
    Entry(
        "dlm convert ~/models/LLaDA-8B-Instruct llada-8b",
        "dlm",
        (printed("as a llada checkpoint"), wrote("llada-8b/dlm_config.json")),
        "~/models/LLaDA-8B-Instruct is a tiny LLaDA-format stand-in (write_fake_llada: LLaDA's "
        "config.json and sharded weights at d_model 32, a character tokenizer), as 8B "
        "weights cannot be downloaded in CI",
    ),
    Entry(
        "dlm eval ppl --model llada-8b --data notes.txt --mc-num 128",
        "dlm",
        (printed("perplexity bound: "),),
        "notes.txt is written first (two lines of prose); llada-8b is the converted stand-in",
        before=(notes_file,),
    ),
    Entry(
        "dlm eval lm-eval --model dlm --model_args pretrained=llada-8b,mc_num=128,batch_size=32 "
        "--tasks arc_easy",
        "dlm",
        (printed("readme_arc_easy", "acc"),),
        "network: arc_easy's data set comes from the Hugging Face Hub, so --tasks names a local "
        "task of arc_easy's layout and prompt (write_arc_like_task: two questions, "
        "multiple_choice, acc) through --include_path, with HF_DATASETS_OFFLINE=1, as "
        "tests/evaluation/test_lm_eval_adapter.py runs lm-eval; model_args as written",
        replace=(("--tasks arc_easy", "--tasks readme_arc_easy --include_path lm-tasks"),),
        before=(arc_like_task,),
        env=(("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1")),
    ),
)
BY_COMMAND = {entry.command: entry for entry in TABLE}


def test_the_table_is_the_readme():
    """Each README command has exactly one entry, and the entries run in README order."""
    in_readme = list(dict.fromkeys(c.text for c in readme_commands(README)))
    assert len(BY_COMMAND) == len(TABLE), "an entry is listed twice"
    missing = [c for c in in_readme if c not in BY_COMMAND]
    stale = [e.command for e in TABLE if e.command not in in_readme]
    assert not missing, f"README commands without a TABLE entry: {missing}"
    assert not stale, f"TABLE entries the README no longer has: {stale}"
    assert [e.command for e in TABLE] == in_readme


def test_every_change_to_a_readme_line_says_why():
    for entry in TABLE:
        assert entry.how in ("dlm", "launcher", "server", "not run"), entry.command
        if entry.how == "not run" or entry.append or entry.replace or entry.before:
            assert entry.reason, f"{entry.command}: the table must say how and why"
        assert entry.checks, f"{entry.command}: a run must check what it produced"


def test_readme_parser_splits_joins_and_drops_comments():
    block = 'a x && b "y; z" # note\n\nc \\\n    --d 1   # more\ne;f'
    assert split_commands(block) == ["a x", 'b "y; z"', "c --d 1", "e", "f"]
    found = readme_commands("x `huggingface-cli get\nthis` `dlm eval --model DIR` `pip`\n")
    assert [(c.text, c.inline) for c in found] == [("huggingface-cli get this", True)]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Work:
    root = tmp_path_factory.mktemp("readme")
    (root / "recipes").symlink_to(ROOT / "recipes", target_is_directory=True)
    home = root / "home"  # what ~ means for these commands
    write_fake_dream(home / "models" / "Dream-v0-Instruct-7B")
    # Dream-Coder's format is Dream's; HumanEval's byte-level prompts need the positions
    write_fake_dream(home / "models" / "Dream-Coder-v0-Base-7B", max_positions=2048)
    write_fake_llada(home / "models" / "LLaDA-8B-Instruct")
    return Work(root, home)


def _argv(entry: Entry, work: Work) -> tuple[dict[str, str], list[str]]:
    """The environment prefix and the argv CI runs for ``entry``: the README's words with the
    entry's replacements, ``~/`` expanded to the stand-in home, and ``append`` at the end."""
    words = shlex.split(entry.command)
    env = {}
    while "=" in words[0] and not words[0].startswith("-"):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    for old, new in entry.replace:
        old_words, new_words = old.split(), new.split()
        at = next(
            (i for i in range(len(words)) if words[i : i + len(old_words)] == old_words), None
        )
        assert at is not None, f"{entry.command}: {old!r} to replace is not in the command"
        words[at : at + len(old_words)] = new_words
    words = [str(work.home / w[2:]) if w.startswith("~/") else w for w in words]
    return env, [*words, *entry.append]


def _cut_stdlib_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlm.data import corpora

    full = corpora.python_stdlib_files

    def first_files(split: str = "train", held_out_percent: int = 5, max_files=None):
        return full(split, held_out_percent, max_files=max_files or 8)

    monkeypatch.setattr(corpora, "python_stdlib_files", first_files)


_LAUNCHERS = {
    "accelerate": [sys.executable, "-m", "accelerate.commands.accelerate_cli"],
    "torchrun": [sys.executable, "-m", "torch.distributed.run"],
}


@pytest.mark.parametrize("entry", TABLE, ids=[e.command for e in TABLE])
def test_readme_command(entry: Entry, work: Work, monkeypatch, capsys):
    if entry.how == "not run":
        for check in entry.checks:
            check(Ran(0, "", "", work.root, work.home))
        return
    if entry.command.startswith("dlm eval lm-eval"):
        pytest.importorskip("lm_eval", reason="lm-eval is the eval/test extra; not installed")
    monkeypatch.chdir(work.root)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # an interactive command reads EOF
    for name, value in entry.env:
        monkeypatch.setenv(name, value)
    if entry.cut_corpus:
        _cut_stdlib_corpus(monkeypatch)
    for step in entry.before:
        step(work.root)
    capsys.readouterr()
    env, argv = _argv(entry, work)
    if entry.how == "server":
        ran = _serve(argv, work)
    elif entry.how == "launcher":
        extra = {"OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", **env}
        done = subprocess.run(
            [*_LAUNCHERS[argv[0]], *argv[1:]],
            cwd=work.root,
            env={**os.environ, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )
        ran = Ran(done.returncode, done.stdout, done.stderr, work.root, work.home)
    else:
        assert argv[0] == "dlm" and not env, entry.command
        try:
            rc = main(argv[1:])
        except SystemExit as done:  # --version and --help exit from argparse
            rc = 0 if done.code is None else int(done.code)
        out, err = capsys.readouterr()
        ran = Ran(rc, out, err, work.root, work.home)
    assert ran.rc == 0, f"exit {ran.rc}\n{ran.err[-3000:]}"
    for check in entry.checks:
        check(ran)


def _serve(argv: list[str], work: Work) -> Ran:
    """``dlm serve`` as a subprocess on a free port: wait for /health, ask /v1/models and for
    one completion (printed as two JSON lines), then SIGTERM; rc 0 when it shut down cleanly."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = list(argv)
    argv[argv.index("--port") + 1] = str(port)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dlm.cli.main", *argv[1:]], cwd=work.root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    out = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        if proc.poll() is None:
            out.append(httpx.get(url + "/v1/models", timeout=30).text)
            body = {"prompt": "506002240050000300130065052140001023", "max_tokens": 8}
            out.append(httpx.post(url + "/v1/completions", json=body, timeout=120).text)
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    rc = 0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode
    return Ran(rc, stdout + "\n".join(out), stderr, work.root, work.home)


# ---------------------------------------------------------------- the Python blocks
@dataclass(frozen=True)
class Block:
    checks: Callable[[dict, str, Path], None]
    reason: str = ""
    replace: tuple[tuple[str, str], ...] = ()


def _tour(ns: dict, out: str, root: Path) -> None:
    assert tuple(ns["out"].sequences.shape) == (1, 74) and ns["out"].nfe == 37
    assert out.startswith("torch.Size([1, 74]) 37 ")
    assert (root / "my-model" / "dlm_config.json").is_file()


def _settings(ns: dict, out: str, root: Path) -> None:
    assert tuple(ns["out"].sequences.shape) == (1, 74)
    assert ns["out"].settings.policy == "margin" and 0 < ns["out"].nfe <= 12


def _training(ns: dict, out: str, root: Path) -> None:
    assert ns["result"].steps == 2
    assert (root / "runs" / "sudoku-diffusion" / "model" / "dlm_config.json").is_file()


PYTHON_BLOCKS: dict[tuple[int, str], Block] = {
    (0, "import torch"): Block(_tour),
    (1, "from dlm.sampling import SamplerSettings, generate"): Block(_settings),
    (2, "from dlm.training import load_train_config, train"): Block(
        _training,
        "shortened: the override list optim.max_steps=300 becomes the tiny 2-step one",
        replace=(('["optim.max_steps=300"]', repr(list(TRAIN))),),
    ),
}


def test_the_python_table_is_the_readme():
    keys = [(i, code.splitlines()[0]) for i, code in enumerate(python_blocks(README))]
    assert keys == list(PYTHON_BLOCKS)


@pytest.fixture(scope="module")
def python_work(tmp_path_factory) -> tuple[Path, dict]:
    """One working directory and one namespace for the README's blocks, run in order."""
    root = tmp_path_factory.mktemp("readme_python")
    (root / "recipes").symlink_to(ROOT / "recipes", target_is_directory=True)
    return root, {"__name__": "readme"}


@pytest.mark.parametrize(
    "key", list(PYTHON_BLOCKS), ids=[f"{i}:{line}" for i, line in PYTHON_BLOCKS]
)
def test_readme_python_block(key, python_work, monkeypatch, capsys):
    root, namespace = python_work
    block = PYTHON_BLOCKS[key]
    code = python_blocks(README)[key[0]]
    for old, new in block.replace:
        assert old in code, f"block {key}: {old!r} to replace is not in the README's code"
        code = code.replace(old, new)
    monkeypatch.chdir(root)
    capsys.readouterr()
    exec(compile(code, f"README.md python block {key[0]}", "exec"), namespace)
    block.checks(namespace, capsys.readouterr().out, root)
