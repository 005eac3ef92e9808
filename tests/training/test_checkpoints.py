"""Checkpoint completeness, recovery of interrupted writes/swaps/deletes, and resume rules."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import yaml

from dlm.config import ConfigError
from dlm.training import Trainer, build_model, prepare_data
from dlm.training import checkpoints as ckpt

from .test_trainer import _fit, tiny_config


def _folder(path, files: dict[str, bytes], complete: bool = True):
    path.mkdir(parents=True)
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    if complete:
        ckpt.write_manifest(path)
    return path


def _tree(root) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------- completeness
def test_a_folder_is_complete_only_with_its_manifest_and_every_size(tmp_path):
    good = _folder(tmp_path / "checkpoint-2", {"a.bin": b"12345", "model/w": b"xy"})
    assert ckpt.is_complete(good)
    no_manifest = _folder(tmp_path / "checkpoint-3", {"trainer_state.json": b"{}"}, complete=False)
    assert "no manifest.json" in ckpt.incomplete_reason(no_manifest)
    cut = _folder(tmp_path / "checkpoint-4", {"a.bin": b"12345"})
    (cut / "a.bin").write_bytes(b"12")
    assert "a.bin has 2 bytes, not the 5" in ckpt.incomplete_reason(cut)
    half_deleted = _folder(tmp_path / "checkpoint-5", {"a.bin": b"1", "b.bin": b"2"})
    (half_deleted / "b.bin").unlink()
    assert ckpt.incomplete_reason(half_deleted) == "b.bin is missing"
    assert ckpt.list_checkpoints(tmp_path) == [good]
    assert ckpt.previous_checkpoint(half_deleted) == good


def test_resuming_from_an_incomplete_checkpoint_names_the_previous_good_one(tmp_path):
    good = _folder(tmp_path / "checkpoint-2", {"trainer_state.json": b'{"step": 2, "data": {}}'})
    bad = _folder(
        tmp_path / "checkpoint-4", {"trainer_state.json": b'{"step": 4, "data": {}}', "x": b"12"}
    )
    (bad / "x").unlink()
    with pytest.raises(
        ckpt.CheckpointError, match=rf"checkpoint-4 is incomplete: x is missing.*resume={good}"
    ):
        ckpt.read_trainer_state(bad)
    assert ckpt.read_trainer_state(good)["step"] == 2


# ---------------------------------------------------------------------- recovery
@pytest.mark.parametrize(
    "state, expected",
    [
        # a kill inside a write: the unfinished temporary folder goes, the old copy stays
        ({".tmp-checkpoint-4": ("new", False), "checkpoint-4": ("old", True)}, "old"),
        # written and marked complete but not swapped in: the new copy replaces the old
        ({".tmp-checkpoint-4": ("new", True), "checkpoint-4": ("old", True)}, "new"),
        # killed after the old copy was moved aside: the finished new one goes in
        ({".tmp-checkpoint-4": ("new", True), ".old-checkpoint-4": ("old", True)}, "new"),
        # killed after the swap, before the old copy was deleted
        ({"checkpoint-4": ("new", True), ".old-checkpoint-4": ("old", True)}, "new"),
        # the aside copy is the only complete one (the folder in place was cut)
        ({"checkpoint-4": ("new", False), ".old-checkpoint-4": ("old", True)}, "old"),
        # a delete interrupted half way through its .trash- folder
        ({".trash-checkpoint-4": ("old", False), "checkpoint-6": ("new", True)}, None),
        # ... also of an unfinished temporary copy or an aside copy (found by kill_soak.py)
        ({".trash-.tmp-checkpoint-4": ("x", False), "checkpoint-6": ("new", True)}, None),
        ({".trash-.old-checkpoint-4": ("x", True), "checkpoint-6": ("new", True)}, None),
        ({".trash-superseded-checkpoint-4": ("x", True), "checkpoint-6": ("new", True)}, None),
    ],
)
def test_recover_keeps_the_newest_complete_copy(tmp_path, state, expected):
    for name, (content, complete) in state.items():
        _folder(tmp_path / name, {"trainer_state.json": b"{}", "w": content.encode()}, complete)
    notes = []
    ckpt.recover(tmp_path, notes.append)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in left if n.startswith((".tmp-", ".old-", ".trash-"))]
    assert notes, "every recovery says what it did"
    if expected is None:
        assert left == ["checkpoint-6"]
    else:
        assert (tmp_path / "checkpoint-4" / "w").read_bytes() == expected.encode()
        assert ckpt.is_complete(tmp_path / "checkpoint-4")


def test_recover_leaves_a_clean_folder_alone(tmp_path):
    _folder(tmp_path / "checkpoint-2", {"w": b"1"})
    before = _tree(tmp_path)
    notes = []
    ckpt.recover(tmp_path, notes.append)
    assert _tree(tmp_path) == before and notes == []


def test_pruning_spares_checkpoints_of_later_steps(tmp_path):
    for step in (2, 4, 6, 8):
        _folder(tmp_path / f"checkpoint-{step}", {"w": b"1"})
    ckpt.prune(tmp_path, keep_last=1, newest=4)  # resumed from 2, just saved 4
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == [
        "checkpoint-4",
        "checkpoint-6",
        "checkpoint-8",
    ]


# ---------------------------------------------------------------------- resume rules
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 6-step run with checkpoints 2, 4 and 6 (copied by each test that changes it)."""
    root = tmp_path_factory.mktemp("finished")
    _fit(tiny_config(root, "save_every=2", "keep_last=3", "optim.scheduler=linear"))
    return root


@pytest.fixture
def run_dir(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path / "run"


def test_resume_with_a_new_learning_rate_rebuilds_the_schedule(run_dir, capsys):
    tmp_path = run_dir
    cfg = tiny_config(
        tmp_path,
        "resume=" + str(tmp_path / "checkpoint-2"),
        "optim.lr=0.5",
        "optim.max_steps=9",
        "optim.scheduler=linear",
    )
    prepared = prepare_data(cfg)
    trainer = Trainer(cfg, build_model(cfg, prepared.tokenizer), prepared.tokenizer, prepared.train)
    seen = []
    real_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    torch.optim.AdamW.step = spy
    try:
        trainer.fit()
    finally:
        torch.optim.AdamW.step = real_step
    # linear decay from 0.5 over 9 steps, resumed at step 2: steps 3..9 use 0.5 * (9 - s) / 9
    assert seen == pytest.approx([0.5 * (9 - s) / 9 for s in range(2, 9)], rel=1e-12)
    err = capsys.readouterr().err
    assert "optim.lr changed from 0.003 to 0.5" in err and "schedule is rebuilt from step 2" in err
    saved = yaml.safe_load((tmp_path / "train_config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.5


@pytest.mark.parametrize(
    "override, field",
    [
        ("model.hidden_size=64", "model.hidden_size"),
        ("data.n_train=100", "data.n_train"),
        ("objective=pretrain", "objective"),
        ("optim.batch_size=4", "optim.batch_size"),
    ],
)
def test_resume_refuses_a_changed_model_data_or_objective_before_writing(run_dir, override, field):
    tmp_path = run_dir
    before = _tree(tmp_path)
    cfg = tiny_config(tmp_path, "resume=latest", "optim.scheduler=linear", override)
    prepared = prepare_data(cfg)
    trainer = Trainer(cfg, build_model(cfg, prepared.tokenizer), prepared.tokenizer, prepared.train)
    with pytest.raises(
        ConfigError, match=rf"{field} was .* in that run and is .* now.*set {field}="
    ):
        trainer.fit()
    assert _tree(tmp_path) == before  # the run directory is untouched


def test_a_checkpoint_that_fails_to_load_names_itself_and_the_previous_one(run_dir):
    tmp_path = run_dir
    latest = ckpt.latest_checkpoint(tmp_path)
    optimizer = latest / "optimizer.bin"
    optimizer.write_bytes(b"\0" * optimizer.stat().st_size)  # same size: only loading finds it
    cfg = tiny_config(tmp_path, "resume=latest", "optim.scheduler=linear")
    prepared = prepare_data(cfg)
    trainer = Trainer(cfg, build_model(cfg, prepared.tokenizer), prepared.tokenizer, prepared.train)
    with pytest.raises(
        ckpt.CheckpointError, match=r"checkpoint-6 cannot be loaded .*resume=.*checkpoint-4"
    ):
        trainer.fit()


def test_resume_latest_with_no_checkpoint_starts_fresh_and_says_so(tmp_path, capsys):
    result = _fit(tiny_config(tmp_path, "resume=latest", "optim.max_steps=2"))
    assert result.steps == 2 and math.isfinite(result.losses[-1])
    assert "no complete checkpoint" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "model" / ckpt.MANIFEST_NAME).read_text())
    assert "model.safetensors" in manifest["files"]


def test_recover_leaves_folders_the_trainer_did_not_write_alone(tmp_path):
    _folder(tmp_path / ".tmp-data", {"keep": b"1"}, complete=False)
    _folder(tmp_path / ".old-results", {"keep": b"2"})
    _folder(tmp_path / ".trash-notes", {"keep": b"3"}, complete=False)
    before = _tree(tmp_path)
    notes = []
    ckpt.recover(tmp_path, notes.append)
    assert _tree(tmp_path) == before and notes == []


def test_a_branch_from_an_earlier_checkpoint_never_resumes_into_the_old_run(run_dir, capsys):
    """Resumed from checkpoint-2 with a new learning rate, the old run's checkpoints 4 and 6
    are moved aside (kept), so resume=latest continues the new branch."""
    _fit(
        tiny_config(
            run_dir,
            f"resume={run_dir / 'checkpoint-2'}",
            "optim.max_steps=4",
            "optim.lr=0.01",
            "optim.scheduler=linear",
            "save_every=2",
        )
    )
    names = sorted(p.name for p in run_dir.iterdir() if "checkpoint" in p.name)
    assert names == [
        "checkpoint-2",
        "checkpoint-4",
        "superseded-checkpoint-4",
        "superseded-checkpoint-6",
    ]
    latest = ckpt.latest_checkpoint(run_dir)
    assert latest.name == "checkpoint-4"
    saved = yaml.safe_load((latest / "train_config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.01  # the new branch's, not the old run's
    assert "checkpoint-6 belongs to the run this one replaces (this one starts at step 2)" in (
        capsys.readouterr().err
    )


def test_a_fresh_run_in_a_used_folder_moves_the_old_checkpoints_aside(run_dir):
    _fit(tiny_config(run_dir, "optim.max_steps=2", "optim.scheduler=linear", "save_every=2"))
    names = sorted(p.name for p in run_dir.iterdir() if "checkpoint" in p.name or "model" in p.name)
    assert names == [
        "checkpoint-2",
        "model",
        "superseded-checkpoint-2",
        "superseded-checkpoint-4",
        "superseded-checkpoint-6",
        "superseded-model",
    ]
    # a second fresh run keeps one superseded generation per name: the second run's
    # checkpoint-2 and model replace the first run's superseded copies
    first = (run_dir / "superseded-model" / "model.safetensors").read_bytes()
    _fit(tiny_config(run_dir, "optim.max_steps=2", "optim.scheduler=linear", "save_every=2"))
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("superseded-")) == [
        "superseded-checkpoint-2",
        "superseded-checkpoint-4",
        "superseded-checkpoint-6",
        "superseded-model",
    ]
    assert (run_dir / "superseded-model" / "model.safetensors").read_bytes() != first
    # the new run's own checkpoint-2
    assert json.loads((run_dir / "checkpoint-2" / "trainer_state.json").read_text())["step"] == 2


def test_an_explicit_resume_at_a_checkpoint_caught_mid_swap_is_recovered_first(run_dir, capsys):
    from dlm.training import train

    (run_dir / "checkpoint-6").rename(run_dir / ".old-checkpoint-6")  # a kill at replace.aside
    result, _ = train(
        tiny_config(run_dir, f"resume={run_dir / 'checkpoint-6'}", "optim.scheduler=linear")
    )
    assert result.steps == 6 and result.losses == []
    assert "recovered checkpoint-6" in capsys.readouterr().err


def test_resuming_with_another_number_of_processes_is_refused(run_dir):
    from dlm.training.resume import resolve_resume

    cfg = tiny_config(run_dir, "resume=latest", "optim.scheduler=linear")
    resume = resolve_resume(cfg, num_processes=1)
    assert resume.path.name == "checkpoint-6" and resume.step == 6
    with pytest.raises(
        ConfigError, match=r"that run had 1 processes and this one has 2.*--num_processes 1"
    ):
        resolve_resume(cfg, num_processes=2)
