"""Two processes on CPU (DDP over gloo) run the same training code and checkpoint every rank."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dlm.models import DiffusionLM

ROOT = Path(__file__).resolve().parents[2]


def test_two_process_training_checkpoints_both_ranks(tmp_path):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "dlm.cli.main",
        "train",
        str(ROOT / "recipes/sudoku/diffusion.yaml"),
        "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
        "data.n_train=64",
        "model.hidden_size=32",
        "model.num_layers=1",
        "model.num_heads=2",
        "model.max_positions=40",
        "optim.batch_size=4",
        "optim.max_steps=4",
        "save_every=2",
        "progress=false",
        f"output_dir={tmp_path}",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for step in (2, 4):  # every rank's random states are in before the manifest seals it
        ckpt = tmp_path / f"checkpoint-{step}"
        listed = json.loads((ckpt / "manifest.json").read_text())["files"]
        assert {"random_states_0.pkl", "random_states_1.pkl"} <= set(listed)
        state = json.loads((ckpt / "trainer_state.json").read_text())
        assert state["step"] == step and state["num_processes"] == 2
    assert DiffusionLM.from_pretrained(tmp_path / "model").config.attention == "bidirectional"
