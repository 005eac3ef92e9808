"""``dlm serve`` as a user runs it: flags checked before the model loads, a saved checkpoint
served, and SIGTERM letting a running request finish before the process exits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
import torch

from dlm.cli.main import main
from serve_helpers import free_port, text_model, text_tokenizer


def test_bad_flags_are_one_line_errors_before_loading(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such directory" in err
    assert main(["serve", "--model", str(tmp_path), "--port", "70000"]) == 2
    assert "at most 65535" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path), "--max-rows", "0"]) == 2
    assert "--max-rows must be at least 1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("served") / "model"
    text_model(max_positions=512, dtype=torch.float32).save_pretrained(out, text_tokenizer())
    return out


def _start(model_dir, log, *extra) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "dlm.cli.main", "serve", "--model", str(model_dir),
           "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, env=env, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
        assert proc.poll() is None, "dlm serve exited at its start"
    raise AssertionError("dlm serve did not start")


def test_sigterm_lets_running_requests_finish(saved_model, tmp_path):
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc, url = _start(saved_model, log, "--api-key", "k", "--shutdown-grace", "60", "--name", "served")
    try:
        headers = {"Authorization": "Bearer k"}
        models = httpx.get(url + "/v1/models", headers=headers).json()
        assert models["data"][0]["id"] == "served"
        body = {"prompt": "ab", "max_tokens": 300, "steps": 300, "stream": True, "dlm_events": True}
        events, signalled = [], False
        with httpx.stream("POST", url + "/v1/completions", json=body, headers=headers, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("event: dlm.step") and not signalled:
                    proc.send_signal(signal.SIGTERM)  # mid-request
                    signalled = True
                if line.startswith("data:"):
                    events.append(line[5:].strip())
        assert events[-1] == "[DONE]"
        done = [json.loads(e) for e in events if e.startswith("{") and '"nfe"' in e and '"finish_reason"' in e]
        assert done and done[-1]["steps"] == 300  # the request ran to its end
        # uvicorn re-raises the SIGTERM it handled once it has shut down: the usual status
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        lines = log_path.read_text().splitlines()
        assert "Application shutdown complete." in " ".join(lines)
        access = [json.loads(line) for line in lines if line.startswith('{"time"')]
        assert any(a["path"] == "/v1/completions" and a["status"] == 200 for a in access)
    finally:
        if proc.poll() is None:
            proc.kill()
