"""The lm-eval ``dlm`` model: registration, the three request types, model_args, and an end
to end run of lm-eval's command line on local multiple-choice and generation tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.registry import get_model  # noqa: E402

from dlm.cli.eval_lm import run_lm_eval  # noqa: E402
from dlm.data.char_tokenizer import EOS_ID, build_char_tokenizer  # noqa: E402
from dlm.evaluation.likelihood import elbo, text_windows  # noqa: E402
from dlm.evaluation.lm_eval_adapter import DlmLM  # noqa: E402
from dlm.sampling import generate  # noqa: E402
from helpers import tiny_model  # noqa: E402

# 35 characters: with the five special tokens the tokenizer has the tiny model's 40 ids
ALPHABET = "abcdefghijklmnopqrstuvwxyz ?.,!:;-'"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("dlm_model")
    tokenizer = build_char_tokenizer(ALPHABET)
    assert len(tokenizer) == 40
    tiny_model(seed=11).save_pretrained(directory, tokenizer)
    return directory


@pytest.fixture(scope="module")
def lm(checkpoint) -> DlmLM:
    return DlmLM(pretrained=str(checkpoint), mc_num=8, batch_size=16, device="cpu", steps=4)


def _request(kind: str, args: tuple, idx: int = 0) -> Instance:
    return Instance(request_type=kind, doc={}, arguments=args, idx=idx)


def test_dlm_is_registered_with_lm_eval():
    assert get_model("dlm") is DlmLM


def test_model_args_win_over_harness_defaults(checkpoint):
    lm = DlmLM.create_from_arg_string(
        f"pretrained={checkpoint},batch_size=4,threshold=0.9,block_length=2",
        {"batch_size": 1, "max_batch_size": None, "device": "cpu"},
    )
    assert lm.batch_size == 4 and lm.device == torch.device("cpu")
    assert lm.sampler == {"threshold": 0.9, "block_length": 2}
    with pytest.raises(ValueError, match="unknown dlm model_args"):
        DlmLM(pretrained=str(checkpoint), device="cpu", stepz=3)
    with pytest.raises(ValueError, match="sampler setting 'policy' must be one of"):
        DlmLM(pretrained=str(checkpoint), device="cpu", policy="best")


def test_generation_settings_layer_model_args_over_the_task_over_the_checkpoint(checkpoint):
    lm = DlmLM.create_from_arg_string(f"pretrained={checkpoint},temperature=0.5,steps=3", {})
    lm.model.generation_defaults = {"top_p": 0.9, "temperature": 1.0, "policy": "margin"}
    kwargs = {"until": ["x"], "max_gen_toks": 5, "temperature": 0.0, "top_k": 4, "eps": 0.01}
    stops, settings = lm._generation_options(kwargs)
    assert stops == ["x"]
    assert settings.temperature == 0.5  # model_args beat the task's 0.0 and the checkpoint's 1.0
    assert settings.steps == 3 and settings.seed == lm.seed
    assert settings.max_new_tokens == 5 and settings.top_k == 4 and settings.eps == 0.01  # the task
    assert settings.top_p == 0.9 and settings.policy == "margin"  # the checkpoint
    assert lm._generation_options({})[1].max_new_tokens == lm.max_length - 1  # 256, clamped


def test_loglikelihood_is_the_mc_elbo(lm):
    requests = [
        _request("loglikelihood", ("ab cd ", "ef"), 0),
        _request("loglikelihood", ("", "hij"), 1),
    ]
    results = lm.loglikelihood(requests, disable_tqdm=True)
    tok = lm.tokenizer
    # the trailing space moves to the continuation; an empty context becomes the EOS token
    pairs = [(tok.encode("ab cd"), tok.encode(" ef")), ([EOS_ID], tok.encode("hij"))]
    expected = elbo(lm.model, pairs, mc_num=8, seed=lm.seed)
    for (ll, greedy), est in zip(results, expected, strict=True):
        assert ll == pytest.approx(est.elbo, abs=1e-5) and isinstance(greedy, bool)


def test_is_greedy_means_greedy_decoding_reproduces_the_continuation(lm):
    prefix = lm.tokenizer.encode("what is it?")
    out = generate(lm.model, torch.tensor([prefix]), max_new_tokens=3, steps=3, seed=lm.seed)
    produced = out.generated[0].tolist()
    changed = [produced[0], produced[1], 5 if produced[2] != 5 else 6]
    flags = lm._greedy_flags([(prefix, produced), (prefix, changed), (prefix, [])])
    assert flags == [True, False, True]


def test_loglikelihood_rolling_sums_the_window_bounds(checkpoint):
    lm = DlmLM(pretrained=str(checkpoint), mc_num=6, device="cpu", max_length=8)
    text = "the quick brown fox jumps"
    (total,) = lm.loglikelihood_rolling([_request("loglikelihood_rolling", (text,))], True)
    windows = text_windows(lm.tokenizer.encode(text), 8, EOS_ID, 0)
    assert len(windows) == 4
    expected = sum(e.elbo for e in elbo(lm.model, windows, mc_num=6, seed=lm.seed))
    assert total == pytest.approx(expected, abs=1e-4)


def test_generate_until_cuts_at_the_first_stop_string(lm):
    args = ("hello there", {"until": [], "max_gen_toks": 6})
    (raw,) = lm.generate_until([_request("generate_until", args)])
    assert raw, "the tiny model generated nothing printable; pick another seed"
    stop = raw[-1]
    kwargs = {"until": ["never", stop], "max_gen_toks": 6, "do_sample": False}
    cut = lm.generate_until(
        [_request("generate_until", ("hello there", kwargs), 0)] * 2
        + [_request("generate_until", ("hi", kwargs), 1)]
    )
    assert cut[0] == cut[1] == raw[: raw.index(stop)]
    assert stop not in cut[2]


def _write_tasks(root: Path, stop: str) -> Path:
    mc = root / "mc.jsonl"
    rows = [
        {"question": "ab", "choices": ["cd", "efg"], "label": 0},
        {"question": "hi", "choices": ["jk", "lm", "no"], "label": 2},
        {"question": "pq", "choices": ["rs", "tu"], "label": 1},
    ]
    mc.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gen = root / "gen.jsonl"
    gen.write_text(json.dumps({"q": "hello there", "a": "x"}) + "\n")
    tasks = root / "tasks"
    tasks.mkdir()
    common = "test_split: test\n"
    cache = f"  cache_dir: {root / 'hf_cache'}\n"
    (tasks / "mc.yaml").write_text(
        f"task: dlm_toy_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {mc}\n{cache}{common}output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\ndoc_to_choice: "{{choices}}"\ndoc_to_target: label\n'
        "metric_list:\n  - metric: acc\n"
    )
    (tasks / "gen.yaml").write_text(
        f"task: dlm_toy_gen\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {gen}\n{cache}{common}output_type: generate_until\n"
        'doc_to_text: "{{q}}"\ndoc_to_target: "{{a}}"\n'
        f"generation_kwargs:\n  until: [{json.dumps(stop)}]\n  max_gen_toks: 6\n"
        "metric_list:\n  - metric: exact_match\n"
    )
    return tasks


def test_lm_eval_command_line_end_to_end(checkpoint, lm, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ("hello there", {"until": [], "max_gen_toks": 6})
    (raw,) = lm.generate_until([_request("generate_until", args)])
    stop = raw[-1]
    tasks = _write_tasks(tmp_path, stop)
    out = tmp_path / "out"
    model_args = f"pretrained={checkpoint},mc_num=8,batch_size=16,steps=4,max_new_tokens=6"
    code = run_lm_eval(
        ["--model", "dlm", "--model_args", model_args, "--tasks", "dlm_toy_mc,dlm_toy_gen"]
        + ["--include_path", str(tasks), "--device", "cpu", "--output_path", str(out)]
        + ["--log_samples"]
    )
    assert code == 0
    (results_file,) = out.glob("*/results_*.json")
    results = json.loads(results_file.read_text())["results"]
    assert 0.0 <= results["dlm_toy_mc"]["acc,none"] <= 1.0
    assert "exact_match,none" in results["dlm_toy_gen"]
    (samples_file,) = out.glob("*/samples_dlm_toy_gen_*.jsonl")
    sample = json.loads(samples_file.read_text().splitlines()[0])
    assert sample["resps"][0][0] == raw[: raw.index(stop)]


def test_runner_returns_lm_evals_exit_status(capsys):
    assert run_lm_eval(["run", "--model", "dlm", "--no-such-flag"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_model_object_and_the_ar_twin(checkpoint):
    tokenizer = build_char_tokenizer(ALPHABET)
    ar = DlmLM(pretrained=tiny_model(attention="causal", seed=2), tokenizer=tokenizer)
    ((ll, greedy),) = ar.loglikelihood([_request("loglikelihood", ("ab", " cd"))], True)
    pair = (tokenizer.encode("ab"), tokenizer.encode(" cd"))
    (exact,) = elbo(ar.model, [pair])
    assert exact.exact and ll == pytest.approx(exact.elbo) and isinstance(greedy, bool)
    with pytest.raises(ValueError, match="tokenizer"):
        DlmLM(pretrained=tiny_model())
