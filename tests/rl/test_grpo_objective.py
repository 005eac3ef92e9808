"""The GRPO objective: old and new policy see the same masks, one step on a toy reward moves
probability toward the rewarded answer, and ``dlm train`` runs it on a model and an adapter."""

from __future__ import annotations

import contextlib

import pytest
import torch

import dlm.training.grpo as grpo_module
from dlm.config import ConfigError
from dlm.data import SequenceData
from dlm.models import DiffusionLM, backbone_config, build_backbone
from dlm.peft import adapter_modules
from dlm.sampling import SamplerSettings
from dlm.tasks import Example
from dlm.training import train
from dlm.training.config import RLSection, load_train_config
from dlm.training.grpo import GRPOObjective
from training.test_trainer import tiny_config

REWARDED = "01234"  # a completion starting with one of these is rewarded


def _tiny_model(tokenizer, seed: int = 0) -> DiffusionLM:
    backbone = build_backbone(
        backbone_config(
            "llama",
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_layers=1,
            num_heads=2,
            max_positions=16,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        seed=seed,
    )
    return DiffusionLM.from_causal_lm(backbone, tokenizer, shift=False)


def _first_char_reward(examples, answers):
    return [1.0 if a[:1] in REWARDED else 0.0 for a in answers]


def _objective(tokenizer, estimator: str, reference=None, **rl) -> GRPOObjective:
    examples = [Example(p, "0") for p in ("ab", "cd", "ef", "gh")]
    return GRPOObjective(
        RLSection(estimator=estimator, group_size=16, **rl),
        tokenizer,
        examples,
        _first_char_reward,
        SamplerSettings(max_new_tokens=1, steps=1, temperature=1.0, seed=None),
        seed=0,
        reference=reference,
    )


def _batch(n: int = 4) -> SequenceData:
    ids = torch.zeros(n, 2, dtype=torch.long)
    flags = torch.zeros(n, 2, dtype=torch.bool)
    return SequenceData(ids, flags, flags, index=torch.arange(n))


def _rewarded_probability(model, tokenizer) -> float:
    """P(first completion token is rewarded | prompt, completion masked), averaged."""
    from dlm.data import batch_prompts

    ids, mask = batch_prompts(tokenizer, ["ab", "cd", "ef", "gh"])
    canvas = torch.cat([ids, torch.full((4, 1), model.config.mask_token_id)], dim=1)
    attention = torch.cat([mask, torch.ones(4, 1, dtype=torch.long)], dim=1)
    with torch.no_grad():
        probs = model(canvas, attention)[:, -1].softmax(-1)
    rewarded = [tokenizer.convert_tokens_to_ids(c) for c in REWARDED]
    return probs[:, rewarded].sum(-1).mean().item()


@pytest.mark.parametrize("estimator", ["coupled", "one_step", "weighted"])
def test_one_grpo_step_moves_probability_toward_the_rewarded_answer(char_tokenizer, estimator):
    torch.manual_seed(0)
    model = _tiny_model(char_tokenizer)
    objective = _objective(char_tokenizer, estimator)
    before = _rewarded_probability(model, char_tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    out = objective(model, _batch(), step=0)
    assert 0 < out.metrics["informative_groups"] <= 1
    out.loss.backward()
    optimizer.step()
    after = _rewarded_probability(model, char_tokenizer)
    assert after > before + 0.01, (before, after)


def test_old_new_and_reference_policies_see_the_same_masks(char_tokenizer, monkeypatch):
    model = _tiny_model(char_tokenizer)
    seen: list[tuple[str, int]] = []
    real = grpo_module.token_logps

    def spy(policy, tokens, attention_mask, plan, mask_id, **kw):
        seen.append(("grad" if torch.is_grad_enabled() else "no_grad", id(plan)))
        return real(policy, tokens, attention_mask, plan, mask_id, **kw)

    monkeypatch.setattr(grpo_module, "token_logps", spy)
    objective = _objective(
        char_tokenizer,
        "coupled",
        reference=lambda policy: contextlib.nullcontext(model),
        inner_steps=3,
        kl_beta=0.1,
    )
    for step in range(3):
        objective(model, _batch(), step=step)
    plans = [id(p) for p in objective._cache[0].masks]
    assert len(set(plans)) == 3  # a fresh draw per inner iteration
    no_grad = [plan for mode, plan in seen if mode == "no_grad"]
    assert no_grad == plans + plans  # old, then reference, each with the iteration's masks
    assert [plan for mode, plan in seen if mode == "grad"] == plans  # new, step by step


def test_a_new_batch_of_prompts_is_rolled_out_every_inner_steps(char_tokenizer):
    model = _tiny_model(char_tokenizer)
    objective = _objective(char_tokenizer, "one_step", inner_steps=2)
    objective(model, _batch(), step=0)
    first = objective._cache[0]
    objective(model, _batch(), step=1)
    assert objective._cache[0] is first
    objective(model, _batch(), step=2)
    assert objective._cache[0] is not first


# ---------------------------------------------------------------------- through dlm train
@pytest.fixture(scope="module")
def sft_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    result, _ = train(tiny_config(out, "optim.max_steps=30", "model.arch=llama"))
    return result.model_dir


def _grpo(out, base, *extra):
    return tiny_config(
        out,
        "objective=grpo",
        f"model.init={base}",
        "rl.group_size=4",
        "rl.reward=cell_accuracy",
        "optim.batch_size=2",
        "optim.max_steps=4",
        "optim.lr=1e-3",
        *extra,
    )


@pytest.mark.parametrize("estimator", ["coupled", "one_step", "weighted"])
def test_dlm_train_runs_grpo_and_logs_its_metrics(tmp_path, sft_model, estimator):
    logs = []
    result, _ = train(
        _grpo(
            tmp_path, sft_model, f"rl.estimator={estimator}", "rl.inner_steps=2", "rl.kl_beta=0.1"
        ),
        callbacks=[lambda step, m: logs.append(m)],
    )
    assert len(logs) == 4 and all(torch.isfinite(torch.tensor(m["loss"])) for m in logs)
    for name in ("reward", "pass_rate", "informative_groups", "kl", "rollouts_per_s"):
        assert name in logs[0]
    assert ("clip_fraction" in logs[0]) == (estimator != "weighted")
    assert 0 <= logs[0]["reward"] <= 1 and logs[0]["kl"] == pytest.approx(0, abs=1e-6)
    DiffusionLM.from_pretrained(result.model_dir)  # a dlm checkpoint, like the start


def test_grpo_on_an_adapter_trains_only_the_adapter(tmp_path, sft_model):
    from dlm.checkpoints import is_adapter_dir, load_model
    from dlm.peft import read_adapter_config

    peft = ["peft.method=prolora", "peft.r=4", "peft.u=1", "peft.m=2", "peft.n=2"]
    logs = []
    result, _ = train(
        _grpo(tmp_path, sft_model, *peft, "rl.kl_beta=0.1", "optim.lr=1e-2"),
        callbacks=[lambda step, m: logs.append(m)],
    )
    assert is_adapter_dir(result.model_dir)
    assert read_adapter_config(result.model_dir)["base"] == str(sft_model.resolve())
    # the reference is the base (adapter off): before the first update the policy equals it
    assert logs[0]["kl"] == pytest.approx(0, abs=1e-6)
    layers = adapter_modules(load_model(result.model_dir)).values()
    assert max(float(layer.full_B().detach().abs().sum()) for layer in layers) > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["objective=grpo"], "set model.init"),
        (
            ["objective=grpo", "model.init=x", "data.task=null", "data.train_file=a.jsonl"],
            "data.task",
        ),
        (
            ["objective=grpo", "model.init=x", "rl.inner_steps=3", "save_every=4"],
            "multiple of rl.inner_steps",
        ),
        (["rl.sampler={temprature: 1.0}"], "did you mean 'temperature'"),
        (["rl.group_size=1"], "rl.group_size must be at least 2"),
        (["rl.coupled_t=[0.8, 0.2]"], "rl.coupled_t"),
        (["rl.clip_low=1.5"], "rl.clip_low"),
    ],
)
def test_bad_rl_recipes_fail_before_any_work(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, ["data.task=sudoku", f"output_dir={tmp_path}", *overrides])


def test_grpo_refuses_a_folder_that_is_not_a_dlm_model(tmp_path):
    (tmp_path / "hf").mkdir()
    cfg = _grpo(tmp_path / "run", tmp_path / "hf")
    with pytest.raises(ConfigError, match="not a dlm model folder"):
        train(cfg)


def test_a_resumed_grpo_run_reproduces_the_uninterrupted_losses(tmp_path, sft_model):
    from dlm.training.checkpoints import list_checkpoints

    extra = ["rl.inner_steps=2", "optim.max_steps=6", "optim.scheduler=constant"]
    full, _ = train(_grpo(tmp_path / "full", sft_model, *extra))
    train(_grpo(tmp_path / "part", sft_model, *extra, "optim.max_steps=4", "save_every=2"))
    first = list_checkpoints(tmp_path / "part")[0]
    assert first.name == "checkpoint-2"
    resumed, _ = train(_grpo(tmp_path / "part", sft_model, *extra, f"resume={first}"))
    assert any(abs(loss) > 1e-4 for loss in full.losses[2:])  # rewards differ within groups
    assert resumed.losses == pytest.approx(full.losses[2:], rel=1e-6, abs=1e-7)


def test_grpo_rewards_code_by_running_each_examples_unit_tests(tmp_path, sft_model):
    """Prompts from a file, each with its tests; the sandbox runs every completion."""
    from dlm.data import write_jsonl

    # the tiny model writes digits: a digit string is a valid Python expression, so for every
    # completion the first test passes and the second fails
    records = [
        {"prompt": p, "target": "", "meta": {"tests": ["assert True", "assert False"]}}
        for p in ("1.2.", "3.4.", "12..", "..34")
    ]
    write_jsonl(tmp_path / "code.jsonl", records)
    logs = []
    cfg = _grpo(
        tmp_path / "run",
        sft_model,
        "data.task=null",
        f"data.train_file={tmp_path / 'code.jsonl'}",
        "rl.reward=tests",
        "rl.sampler={temperature: 1.0, max_new_tokens: 4}",
        "optim.max_steps=2",
    )
    train(cfg, callbacks=[lambda step, m: logs.append(m)])
    assert [m["reward"] for m in logs] == [0.5, 0.5]  # one test of two, for every completion
    assert all(m["pass_rate"] == 0 for m in logs)  # "assert False" never passes


def test_a_code_reward_needs_prompts_with_tests(tmp_path):
    with pytest.raises(ConfigError, match="data.train_file"):
        load_train_config(
            None, ["objective=grpo", "model.init=x", "rl.reward=tests", f"output_dir={tmp_path}"]
        )
