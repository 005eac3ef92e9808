"""Training an adapter (a recipe's ``peft:`` section): only the adapter trains and is saved,
the base stays bit-identical, resume is exact, and the adapter folder is what ``generate``,
``eval``, ``peft merge`` and ``peft export`` open (stock peft loads the export)."""

from __future__ import annotations

import json

import pytest
import safetensors.torch
import torch
from transformers import AutoModelForCausalLM

from dlm.checkpoints import is_adapter_dir, load_model
from dlm.cli.main import main
from dlm.config import ConfigError
from dlm.peft import PeftSettings, adapter_modules, adapter_state_dict, add_adapter
from dlm.training import checkpoints as ckpt
from dlm.training import train
from dlm.training.trainer import check_trainable_state

from .test_trainer import tiny_config

PEFT = ["peft.method=prolora", "peft.r=4", "peft.u=1", "peft.m=2", "peft.n=2"]
PUZZLE = "1234341221434321".replace("1", "0", 3)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny trained Sudoku model: the frozen base of every adapter here."""
    out = tmp_path_factory.mktemp("base")
    result, _ = train(tiny_config(out, "optim.max_steps=3"))
    return result.model_dir


def _adapter_config(out, base, *extra):
    return tiny_config(
        out, f"model.init={base}", *PEFT, "optim.max_steps=4", "optim.lr=1e-2", *extra
    )


@pytest.fixture(scope="module")
def adapted(tmp_path_factory, base):
    out = tmp_path_factory.mktemp("adapter")
    result, _ = train(_adapter_config(out, base, "save_every=2"))
    return result


def _base_tensors(model) -> dict[str, torch.Tensor]:
    """The backbone's own parameters (an adapter layer's base weight under its base name)."""
    names = {}
    for name, tensor in model.backbone.state_dict().items():
        if "lora_" in name:
            continue
        names[name.replace(".base_layer.", ".").replace(".base.", ".")] = tensor
    return names


def test_adapter_training_leaves_every_base_weight_bit_identical(base, adapted):
    assert is_adapter_dir(adapted.model_dir)
    before = _base_tensors(load_model(base))
    after_model = load_model(adapted.model_dir)
    after = _base_tensors(after_model)
    assert set(before) == set(after)
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name
    # the adapter did train: its B (zero at the start) moved
    trained = adapter_state_dict(after_model)
    assert any(k.endswith("lora_B") and bool(v.abs().sum() > 0) for k, v in trained.items())
    assert len(adapter_modules(after_model)) == 8  # GPT-2: c_attn, c_proj, c_fc, c_proj x 2 blocks


def test_checkpoints_hold_the_adapter_and_its_optimizer_state_only(adapted):
    checkpoint = ckpt.checkpoint_dir(adapted.model_dir.parent, 2)
    saved = safetensors.torch.load_file(str(checkpoint / "model.safetensors"))
    model = load_model(adapted.model_dir)
    adapter_names = {k for k, _ in adapter_state_dict(model).items()}
    assert set(saved) == adapter_names
    optimizer = torch.load(checkpoint / "optimizer.bin", weights_only=False)
    assert len(optimizer["state"]) == len(adapter_names)  # AdamW moments of the adapter alone
    assert is_adapter_dir(checkpoint / "model")
    assert not (adapted.model_dir / "model.safetensors").exists()


def test_a_resumed_adapter_run_reproduces_the_uninterrupted_one(tmp_path, base, adapted):
    part = tmp_path / "part"
    train(_adapter_config(part, base, "save_every=2"))  # the same run, resumed at step 2 below
    resumed, _ = train(_adapter_config(part, base, f"resume={part / 'checkpoint-2'}"))
    assert resumed.losses == pytest.approx(adapted.losses[2:], rel=1e-6, abs=1e-7)
    final = adapter_state_dict(load_model(resumed.model_dir))
    uninterrupted = adapter_state_dict(load_model(adapted.model_dir))
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(final[name], tensor, rtol=1e-5, atol=1e-7)


def test_resuming_with_other_adapter_settings_is_refused(tmp_path, base, adapted):
    checkpoint = ckpt.checkpoint_dir(adapted.model_dir.parent, 2)
    cfg = _adapter_config(tmp_path, base, "peft.u=0", f"resume={checkpoint}")
    with pytest.raises(ConfigError, match="peft.u was 1 in that run and is 0 now"):
        train(cfg)
    # the trainer's own check of a checkpoint's tensors against the trainable ones
    other = add_adapter(load_model(base), PeftSettings(r=4, u=0))
    with pytest.raises(ckpt.CheckpointError, match="does not hold this run's adapter"):
        check_trainable_state([other], checkpoint)
    check_trainable_state([load_model(adapted.model_dir)], checkpoint)  # its own: no error


def test_peft_needs_a_base_model(tmp_path):
    with pytest.raises(ConfigError, match="set model.init"):
        tiny_config(tmp_path, *PEFT)


def _generate(capsys, *model_args):
    args = ["generate", *model_args, "--prompt", PUZZLE, "--steps", "4", "--raw"]
    assert main(args) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_generate_opens_the_adapter_folder_on_its_base_and_with_adapter(capsys, base, adapted):
    alone = _generate(capsys, "--model", str(adapted.model_dir))
    with_flag = _generate(capsys, "--model", str(base), "--adapter", str(adapted.model_dir))
    assert alone == with_flag and set(alone) <= set("0123456789")


def test_eval_takes_an_adapter(capsys, base, adapted, tmp_path):
    out = tmp_path / "report.json"
    args = ["eval", "--model", str(base), "--adapter", str(adapted.model_dir), "--n", "4"]
    assert main([*args, "--steps", "4", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["n_eval"] == 4 and report["task"] == "sudoku"  # the adapter run's task
    assert report["model"] == str(adapted.model_dir)


def test_merge_writes_a_plain_checkpoint_with_the_same_outputs(capsys, base, adapted, tmp_path):
    merged = tmp_path / "merged"
    assert main(["peft", "merge", "--adapter", str(adapted.model_dir), "--out", str(merged)]) == 0
    assert (merged / "dlm_config.json").is_file()
    ids = torch.randint(4, 14, (2, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expect = load_model(adapted.model_dir)(ids)
        got = load_model(merged)(ids)
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-5)
    assert _generate(capsys, "--model", str(merged)) == _generate(
        capsys, "--model", str(adapted.model_dir)
    )


def test_export_loads_in_stock_peft_with_the_same_outputs(base, adapted, tmp_path):
    from peft import PeftModel

    out = tmp_path / "exported"
    assert main(["peft", "export", "--adapter", str(adapted.model_dir), "--out", str(out)]) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["base_model_name_or_path"] == str(base.resolve())
    stock = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out).eval()
    ours = load_model(adapted.model_dir)
    ids = torch.randint(4, 14, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expect = ours.backbone(input_ids=ids).logits
        got = stock(input_ids=ids).logits
    torch.testing.assert_close(got, expect, rtol=0, atol=1e-5)


def test_peft_commands_refuse_bad_folders_before_work(capsys, base, adapted, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    code = main(["peft", "merge", "--adapter", str(adapted.model_dir), "--out", str(busy)])
    assert code == 2 and "is not empty" in capsys.readouterr().err
    assert (busy / "keep.txt").read_text() == "mine"
    code = main(["peft", "export", "--adapter", str(base), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "is not a dlm adapter folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_a_lora_adapter_trains_saves_and_reopens_the_same(tmp_path, base):
    """method: lora (Hugging Face peft) goes through the same training, folder and loader."""
    cfg = tiny_config(
        tmp_path, f"model.init={base}", "peft.method=lora", "peft.r=4", "optim.max_steps=2"
    )
    result, _ = train(cfg)
    reopened = load_model(result.model_dir)
    saved = safetensors.torch.load_file(str(result.model_dir / "adapter.safetensors"))
    assert saved and all(".lora_A.default." in k or ".lora_B.default." in k for k in saved)
    ids = torch.randint(4, 14, (2, 20), generator=torch.Generator().manual_seed(2))
    merged = tmp_path / "merged"
    assert main(["peft", "merge", "--adapter", str(result.model_dir), "--out", str(merged)]) == 0
    with torch.no_grad():
        torch.testing.assert_close(load_model(merged)(ids), reopened(ids), rtol=0, atol=1e-5)
    before = _base_tensors(load_model(base))
    after = _base_tensors(reopened)
    assert all(torch.equal(t, after[name]) for name, t in before.items())
