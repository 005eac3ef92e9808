"""Every user mistake the CLI knows, as one table: exit 2, one line, the thing to change named,
and nothing on disk touched.

Each row is a command line run in-process through ``dlm.cli.main.main``. The test snapshots
every file and folder under the row's ``tmp_path`` and the shared tiny model (bytes and
modification times) before the run and compares after: a refused command writes nothing,
in particular it never truncates or replaces the existing output file ``existing.jsonl``.

Mistakes tested elsewhere are not repeated here: a mistyped recipe key, a missing recipe, a
missing model folder, a folder that is not a checkpoint (``tests/test_errors.py``); no
prompts, an empty data file, a prompt longer than the model, ``--chat`` without a chat
template (``tests/test_cli.py``); task-make and eval-voting mistakes
(``tests/test_cli_tasks.py``); the recipe checks ``tests/training/test_config.py`` lists
(max_steps, num_heads, eps, cart_p, scheduled_min_prob). Token ids outside the vocabulary
cannot come from ``--prompt`` (the tokenizer makes them) and are the sampler's tests'.
The resume rows copy one tiny trained run (``_trained_run``) into the row's folder, so the
snapshot shows that a refused resume leaves the run directory, its ``train_config.yaml``
included, exactly as it was.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlm.cli.main import main
from dlm.data.char_tokenizer import build_char_tokenizer
from helpers import tiny_model

RECIPE = "recipes/sudoku/diffusion.yaml"
EXISTING = "precious results\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """One tiny model with a character tokenizer, shared by every row (never written to)."""
    directory = tmp_path_factory.mktemp("shared") / "model"
    tiny_model().save_pretrained(directory, build_char_tokenizer("0123456789"))
    return directory


def _damage(edit):
    """A row's setup: a copy of the shared model at ``tmp/bad`` changed by ``edit(folder)``."""

    def setup(tmp: Path, model: Path) -> None:
        shutil.copytree(model, tmp / "bad")
        edit(tmp / "bad")

    return setup


def _config(**changes):
    def edit(folder: Path) -> None:
        path = folder / "dlm_config.json"
        data = json.loads(path.read_text())
        for key, value in changes.items():
            if value is ...:
                del data[key]
            else:
                data[key] = value
        path.write_text(json.dumps(data))

    return _damage(edit)


def _write(name: str, text: str):
    return _damage(lambda folder: (folder / name).write_text(text))


def _delete(name: str):
    return _damage(lambda folder: (folder / name).unlink())


def _halve_weights(folder: Path) -> None:
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _halve_tokenizer(folder: Path) -> None:
    path = folder / "tokenizer.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _double_width(folder: Path) -> None:
    """config.json says twice the width the weights have."""
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data["n_embd"] *= 2
    path.write_text(json.dumps(data))


def _no_tokenizer(tmp: Path, model: Path) -> None:
    tiny_model().save_pretrained(tmp / "bad")


def _train_json_is_a_folder(tmp: Path, model: Path) -> None:
    (tmp / "made" / "train.jsonl").mkdir(parents=True)


def _read_only(tmp: Path, model: Path) -> None:
    (tmp / "ro").mkdir()
    (tmp / "ro").chmod(0o500)


TINY_RUN = """\
data: {task: sudoku, n_train: 32, n_eval: 2,
       task_options: {box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}}
model: {hidden_size: 16, num_layers: 1, num_heads: 2, max_positions: 40}
optim: {batch_size: 8, max_steps: 4}
save_every: 2
progress: false
"""


@functools.cache
def _trained_run() -> Path:
    """A 4-step run with checkpoints 2 and 4 and its recipe, trained once per session."""
    from dlm.training import load_train_config, train

    root = Path(tempfile.mkdtemp(prefix="dlm_mistakes_run_"))
    atexit.register(shutil.rmtree, root, True)
    (root / "recipe.yaml").write_text(TINY_RUN)
    train(load_train_config(str(root / "recipe.yaml"), [f"output_dir={root}"]))
    return root


def _run_copy(edit=None):
    """A row's setup: a copy of the trained run at ``tmp/run``, changed by ``edit(run)``."""

    def setup(tmp: Path, model: Path) -> None:
        shutil.copytree(_trained_run(), tmp / "run")
        if edit is not None:
            edit(tmp / "run")

    return setup


def _cut_checkpoint(run: Path) -> None:
    (run / "checkpoint-4" / "optimizer.bin").unlink()


@dataclass(frozen=True)
class Mistake:
    argv: tuple[str, ...]  # {model}: the shared model, {tmp}: the row's folder
    needle: str  # the option or field the one-line message must name
    setup: object = None  # setup(tmp, model) before the snapshot


def m(argv: str, needle: str, setup=None) -> Mistake:
    return Mistake(tuple(argv.split()), needle, setup)


GEN = "generate --model {model} --prompt 12"
BAD = "generate --model {tmp}/bad --prompt 12"
EVAL = "eval --model {model} --task sudoku"
PPL = "eval ppl --model {model} --data {tmp}/doc.txt"
RESUME = "train {tmp}/run/recipe.yaml output_dir={tmp}/run resume=latest"

MISTAKES = {
    # integer flags, range-checked where they are defined
    "generate-batch-size-negative": m(
        GEN + " --batch-size -1 --output {tmp}/existing.jsonl", "--batch-size must be at least 1"
    ),
    "generate-batch-size-zero": m(GEN + " --batch-size 0", "--batch-size must be at least 1"),
    "generate-batch-size-not-a-number": m(
        GEN + " --batch-size two", "--batch-size takes a whole number"
    ),
    "generate-no-model": m("generate --prompt 12", "--model"),
    "generate-prompt-outside-the-alphabet": m(
        "generate --model {model} --prompt 1.x2",
        "--prompt: '.', 'x' are not in the model's vocabulary",
    ),
    "generate-input-outside-the-alphabet": m(
        "generate --model {model} --input {tmp}/letters.jsonl --output {tmp}/existing.jsonl",
        "letters.jsonl record 2: 'a', 'b' are not in the model's vocabulary",
        lambda tmp, model: (tmp / "letters.jsonl").write_text(
            '{"prompt": "12"}\n{"prompt": "ab"}\n'
        ),
    ),
    # the sampler flags (SamplerSettings' ranges), checked before the model loads
    "generate-temperature-negative": m(GEN + " --temperature -1", "--temperature"),
    "generate-top-p-above-one": m(GEN + " --top-p 1.5", "--top-p"),
    "generate-top-k-negative": m(GEN + " --top-k -1", "--top-k"),
    "generate-steps-fractional": m(GEN + " --steps 1.5", "--steps"),
    "generate-steps-zero": m(GEN + " --steps 0", "--steps"),
    "generate-policy-unknown": m(GEN + " --policy best", "--policy"),
    # --output, checked before any work
    "generate-output-is-a-folder": m(GEN + " --output {tmp}/folder", "--output"),
    "generate-output-under-a-file": m(GEN + " --output {tmp}/existing.jsonl/x.jsonl", "--output"),
    "generate-output-read-only-folder": m(
        GEN + " --output {tmp}/ro/x.jsonl", "--output", _read_only
    ),
    "generate-stream-with-output": m(GEN + " --stream --output {tmp}/existing.jsonl", "--stream"),
    "generate-input-missing": m(
        "generate --model {model} --input {tmp}/nope.jsonl --output {tmp}/existing.jsonl",
        "nope.jsonl",
    ),
    "generate-input-not-json": m(
        "generate --model {model} --input {tmp}/doc.txt --output {tmp}/existing.jsonl",
        "doc.txt:1 is not valid JSON",
    ),
    # checkpoints that are not (or no longer) whole
    "model-is-a-file": m("generate --model {tmp}/existing.jsonl --prompt 12", "existing.jsonl"),
    "config-not-json": m(BAD, "dlm_config.json", _write("dlm_config.json", "{mask_token_id: 2")),
    "config-a-list": m(BAD, "dlm_config.json", _write("dlm_config.json", "[2]")),
    "config-unknown-key": m(BAD, "'mask_id'", _config(mask_id=2)),
    "config-missing-key": m(BAD, "'mask_token_id'", _config(mask_token_id=...)),
    "config-mask-id-a-string": m(BAD, "mask_token_id", _config(mask_token_id="2")),
    "config-mask-id-negative": m(BAD, "mask_token_id", _config(mask_token_id=-1)),
    "config-mask-id-outside-vocab": m(BAD, "mask_token_id=40", _config(mask_token_id=40)),
    "config-shift-not-a-bool": m(BAD, "shift", _config(shift="yes")),
    "config-attention-unknown": m(BAD, "attention", _config(attention="sideways")),
    "config-newer-format": m(BAD, "upgrade dlm", _config(format_version=99)),
    "backbone-config-missing": m(BAD, "config.json", _delete("config.json")),
    "weights-missing": m(BAD, "model.safetensors", _delete("model.safetensors")),
    "weights-cut-short": m(BAD, "cut short", _damage(_halve_weights)),
    "weights-of-another-shape": m(BAD, "mismatched keys", _damage(_double_width)),
    "no-tokenizer": m(BAD, "tokenizer", _no_tokenizer),
    # dlm eval
    "eval-json-is-a-folder": m(EVAL + " --json {tmp}/folder", "--json"),
    "eval-save-examples-is-a-folder": m(EVAL + " --save-examples {tmp}/folder", "--save-examples"),
    "eval-json-under-a-file": m(EVAL + " --json {tmp}/existing.jsonl/r.json", "--json"),
    "eval-batch-size-zero": m(EVAL + " --batch-size 0", "--batch-size"),
    "eval-samples-zero": m(EVAL + " --samples 0", "--samples"),
    "eval-n-zero": m(EVAL + " --n 0", "--n must be at least 1"),
    "eval-max-passes-zero": m(EVAL + " --max-passes 0 --multipass", "--max-passes"),
    "eval-temperature-negative": m(EVAL + " --temperature -0.5", "--temperature"),
    # dlm eval ppl
    "ppl-json-is-a-folder": m(PPL + " --json {tmp}/folder", "--json"),
    "ppl-json-under-a-file": m(PPL + " --json {tmp}/existing.jsonl/r.json", "--json"),
    "ppl-mc-num-zero": m(PPL + " --mc-num 0", "--mc-num"),
    "ppl-seq-len-zero": m(PPL + " --seq-len 0", "--seq-len"),
    "ppl-context-negative": m(PPL + " --context -1", "--context must be at least 0"),
    "ppl-batch-size-zero": m(PPL + " --batch-size 0", "--batch-size"),
    # dlm eval lm-eval: lm-eval itself only warns when it cannot save
    "lm-eval-output-under-a-file": m(
        "eval lm-eval --model dlm --model_args pretrained={model} --tasks x "
        "--output_path {tmp}/existing.jsonl/results",
        "--output_path",
    ),
    "lm-eval-json-output-is-a-folder": m(
        "eval lm-eval --model dlm --tasks x --output_path={tmp}/folder.json", "--output_path"
    ),
    # dlm demo (checked before any puzzle is generated)
    "demo-json-is-a-folder": m("demo --json {tmp}/folder", "--json"),
    "demo-out-is-a-file": m("demo --out {tmp}/existing.jsonl", "--out"),
    "demo-out-is-a-folder-of-other-files": m("demo --out {tmp}/folder", "--out"),
    "demo-recipe-out-of-range": m("demo optim.batch_size=0", "optim.batch_size"),
    # dlm task make
    "task-make-out-is-a-file": m("task make sudoku --out {tmp}/existing.jsonl", "--out"),
    "task-make-out-under-a-file": m("task make sudoku --out {tmp}/existing.jsonl/d", "--out"),
    "task-make-file-is-a-folder": m(
        "task make sudoku --n 2 --n-test 1 --out {tmp}/made", "train.jsonl", _train_json_is_a_folder
    ),
    "task-make-n-negative": m("task make sudoku --n -1 --out {tmp}/new", "--n must be at least 0"),
    "task-make-n-test-not-a-number": m("task make sudoku --n-test many", "--n-test"),
    # dlm convert
    "convert-dst-is-a-file": m("convert {model} {tmp}/existing.jsonl", "DST"),
    "convert-dst-under-a-file": m("convert {model} {tmp}/existing.jsonl/out", "DST"),
    # dlm train: every numeric recipe value out of its range, and output_dir
    "train-output-dir-is-a-file": m(
        f"train {RECIPE} output_dir={{tmp}}/existing.jsonl", "output_dir"
    ),
    **{
        f"recipe-{override}": m(f"train {RECIPE} {override}", override.split("=")[0])
        for override in (
            "optim.batch_size=0",
            "optim.lr=-1e-3",
            "optim.lr=.inf",
            "optim.weight_decay=-0.1",
            "optim.warmup_steps=-1",
            "optim.max_grad_norm=0",
            "optim.grad_accum=0",
            "save_every=-1",
            "log_every=0",
            "keep_last=0",
            "data.n_train=0",
            "data.n_eval=-1",
            "data.seq_len=0",
            "data.coupled_prob=1.5",
            "model.anneal_steps=-1",
            "model.dropout=1.0",
            "model.intermediate_size=0",
            "model.hidden_size=0",
            "diffusion.num_steps=0",
            "diffusion.scheduled_ramp_steps=0",
            "diffusion.scheduled_sampler_steps=0",
            "diffusion.reweight_alpha=0",
            "diffusion.reweight_beta=-1",
        )
    },
    "recipe-optim.betas": m(f"train {RECIPE} optim.betas=[0.9,1.0]", "optim.betas[1]"),
    "recipe-seed-negative": m(f"train {RECIPE} seed=-1", "seed must lie in [0, 2**32)"),
    "recipe-data-seed-too-large": m(f"train {RECIPE} data.seed=4294967296", "data.seed"),
    "tokenizer-cut-short": m(
        BAD, "tokenizer.json (the tokenizer) is not valid JSON", _damage(_halve_tokenizer)
    ),
    # resuming: what may not change, and checkpoints that cannot be resumed from
    "resume-model-shape-changed": m(
        RESUME + " model.hidden_size=32", "model.hidden_size was 16 in that run", _run_copy()
    ),
    "resume-data-changed": m(RESUME + " data.n_train=64", "data.n_train", _run_copy()),
    "resume-weighting-changed": m(
        RESUME + " diffusion.weighting=cart", "diffusion.weighting", _run_copy()
    ),
    "resume-not-a-checkpoint": m(
        RESUME.replace("resume=latest", "resume={tmp}/folder"),
        "not a training checkpoint",
        _run_copy(),
    ),
    "resume-checkpoint-incomplete": m(
        RESUME.replace("resume=latest", "resume={tmp}/run/checkpoint-4"),
        "checkpoint-4 is incomplete: optimizer.bin is missing; resume from the previous good one",
        _run_copy(_cut_checkpoint),
    ),
    "resume-from-the-final-model": m(
        RESUME.replace("resume=latest", "resume={tmp}/run/model"),
        "not a training checkpoint",
        _run_copy(),
    ),
    "resume-past-max-steps": m(
        RESUME + " optim.max_steps=3", "at step 4, past optim.max_steps=3", _run_copy()
    ),
}


def _snapshot(*roots: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file's bytes and every entry's mtime under ``roots`` (folders: bytes None)."""
    found: dict[str, tuple[bytes | None, int]] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            stat = path.lstat()
            found[str(path)] = (path.read_bytes() if path.is_file() else None, stat.st_mtime_ns)
    return found


@pytest.fixture(autouse=True, scope="module")
def no_progress_bars():
    """transformers' loading progress bar is not an error line; switch it off here."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    yield
    logging.enable_progress_bar()


@pytest.fixture
def root_sees_no_read_only(monkeypatch):
    """As root every folder is writable to ``os.access``; make a 0o500 folder read as it would
    for any other user, so the read-only row tests the same check everywhere."""
    if os.geteuid() != 0:
        return
    real = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and (os.stat(path).st_mode & 0o222) == 0:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("row", list(MISTAKES.values()), ids=list(MISTAKES))
def test_a_user_mistake_is_one_line_exit_2_and_writes_nothing(
    row, saved, tmp_path, capsys, root_sees_no_read_only
):
    (tmp_path / "existing.jsonl").write_text(EXISTING)
    (tmp_path / "doc.txt").write_text("12 34\n\n56 78\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("keep me\n")
    (tmp_path / "folder.json").mkdir()
    if row.setup is not None:
        row.setup(tmp_path, saved)
    argv = [arg.format(model=saved, tmp=tmp_path) for arg in row.argv]
    before = _snapshot(tmp_path, saved.parent)
    capsys.readouterr()  # what the setup printed
    try:
        code = main(argv)
    finally:
        if (tmp_path / "ro").exists():
            (tmp_path / "ro").chmod(0o700)  # so pytest can remove it
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("dlm ") and ": error: " in lines[0], err
    assert "Traceback" not in err
    assert row.needle in lines[0], lines[0]
    after = _snapshot(tmp_path, saved.parent)
    after.pop(str(tmp_path / "ro"), None)  # its mode was restored above, after the run
    before.pop(str(tmp_path / "ro"), None)
    assert after == before
    assert (tmp_path / "existing.jsonl").read_text() == EXISTING


def test_weights_of_another_model_are_refused_not_randomly_filled(saved, tmp_path):
    """A weights file that lacks tensors config.json needs: an error, never random weights."""
    from safetensors.torch import load_file, save_file

    import dlm
    from dlm.models import NotADlmCheckpointError

    bad = tmp_path / "bad"
    shutil.copytree(saved, bad)
    state = load_file(bad / "model.safetensors")
    del state[sorted(state)[0]]
    save_file(state, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(NotADlmCheckpointError, match="missing keys"):
        dlm.load_model(bad)


def test_a_published_checkpoint_cut_short_names_the_file(tmp_path):
    """The published loader checks every weight file before reading a tensor."""
    from dlm.checkpoints.weights import iter_tensors, weight_names
    from dlm.models import NotADlmCheckpointError

    tiny_model().backbone.save_pretrained(tmp_path)
    _halve_weights(tmp_path)
    with pytest.raises(NotADlmCheckpointError, match=r"model.safetensors .*cut short"):
        weight_names(tmp_path)
    with pytest.raises(NotADlmCheckpointError, match="cut short"):
        next(iter_tensors(tmp_path))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}})
    )
    with pytest.raises(NotADlmCheckpointError, match="lacks the weight shard model-00001"):
        next(iter_tensors(tmp_path))


def test_a_good_output_is_still_written_atomically(saved, tmp_path, capsys):
    """The checks refuse only mistakes: a valid --output over an existing file replaces it."""
    out = tmp_path / "existing.jsonl"
    out.write_text(EXISTING)
    argv = ["generate", "--model", str(saved), "--prompt", "12", "--max-new-tokens", "4"]
    assert main([*argv, "--steps", "2", "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["prompt"] == "12" and "output" in rows[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.jsonl"]  # no temp left
