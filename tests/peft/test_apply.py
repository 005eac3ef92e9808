"""``dlm.peft.apply`` on tiny DiffusionLMs: targets, freezing, counts, merge, save/load, export."""

from __future__ import annotations

import json

import pytest
import torch
from peft import PeftModel

from dlm.config import ConfigError
from dlm.errors import DlmUserError
from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone
from dlm.peft import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    PEFT_WEIGHTS,
    AdapterError,
    PeftSettings,
    PeftSettingsError,
    PRoLoRALinear,
    adapter_modules,
    adapter_state_dict,
    add_adapter,
    export_peft,
    linear_layers,
    load_adapter,
    match_targets,
    matrix_parameters,
    merge_adapter,
    parameter_counts,
    save_adapter,
    trainable_parameters,
)
from helpers import VOCAB, tiny_model

PROLORA = PeftSettings(method="prolora", r=4, u=1, m=2, n=3, alpha=8.0)
LORA = PeftSettings(method="lora", r=4, alpha=8.0)


def _ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(seed))


def _randomise(model: DiffusionLM, seed: int = 3) -> DiffusionLM:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in trainable_parameters(model):
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model


def _adapted(arch: str, settings: PeftSettings) -> DiffusionLM:
    return _randomise(add_adapter(tiny_model(arch), settings))


# ---------------------------------------------------------------------- targets
def test_target_patterns():
    backbone = tiny_model("gpt2").backbone
    assert match_targets(backbone, ["c_attn"]) == [
        "transformer.h.0.attn.c_attn",
        "transformer.h.1.attn.c_attn",
    ]
    assert match_targets(backbone, ["attn.c_proj"]) == [
        "transformer.h.0.attn.c_proj",
        "transformer.h.1.attn.c_proj",
    ]
    assert len(match_targets(backbone, ["c_proj"])) == 4
    assert match_targets(backbone, ["transformer.h.1.mlp.*"]) == [
        "transformer.h.1.mlp.c_fc",
        "transformer.h.1.mlp.c_proj",
    ]
    assert match_targets(backbone, [r"re:transformer\.h\.0\..*c_(fc|attn)"]) == [
        "transformer.h.0.attn.c_attn",
        "transformer.h.0.mlp.c_fc",
    ]
    assert len(match_targets(backbone, ())) == 8  # default: c_attn, c_proj, c_fc of every block
    assert len(match_targets(tiny_model("llama").backbone, ())) == 14


def test_unmatched_target_is_a_one_line_user_error_naming_the_layers():
    model = tiny_model("gpt2")
    with pytest.raises(PeftSettingsError) as err:
        add_adapter(model, PeftSettings(method="prolora", targets=("c_attn", "q_proj")))
    message = str(err.value)
    assert "'q_proj'" in message and "c_attn, c_fc, c_proj, lm_head" in message
    assert "\n" not in message
    assert not adapter_modules(model)  # refused before anything changed
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"r": 0}, "peft.r"),
        ({"r": 4, "u": 5}, "peft.u"),
        ({"u": -1}, "peft.u"),
        ({"m": 0}, "peft.m"),
        ({"n": 1.5}, "peft.n"),
        ({"method": "dora"}, "peft.method"),
        ({"alpha": 0}, "peft.alpha"),
        ({"dropout": 1.0}, "peft.dropout"),
        ({"init": "kaiming"}, "peft.init"),
        ({"method": "lora", "u": 2}, "peft.u"),
        ({"method": "lora", "rotation": False}, "peft.rotation"),
        ({"targets": ("",)}, "peft.targets"),
    ],
)
def test_bad_settings_are_one_line_user_errors(kwargs, field):
    with pytest.raises(DlmUserError) as err:
        PeftSettings(**kwargs)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_settings_dict_round_trip_and_unknown_key():
    settings = PeftSettings(method="prolora", r=6, u=2, m=3, n=2, targets=("q_proj", "v_proj"))
    assert PeftSettings.from_dict(settings.to_dict()) == settings
    assert PeftSettings.from_dict({"method": "lora", "r": 8, "targets": ["c_attn"]}).targets == (
        "c_attn",
    )
    with pytest.raises(ConfigError, match="peft.rank"):
        PeftSettings.from_dict({"rank": 8})
    with pytest.raises(ConfigError, match="peft.r must be an integer"):
        PeftSettings.from_dict({"r": "eight"})


def test_sharing_rate_larger_than_a_layer_is_refused():
    with pytest.raises(PeftSettingsError, match="peft.m=64 exceeds the 32 features"):
        add_adapter(tiny_model("llama"), PeftSettings(method="prolora", m=64))


def test_a_second_adapter_is_refused():
    model = add_adapter(tiny_model("gpt2"), PROLORA)
    with pytest.raises(AdapterError, match="already has an adapter"):
        add_adapter(model, LORA)


# ---------------------------------------------------------------------- freezing, counts, training
def test_add_adapter_freezes_the_base_and_changes_nothing_at_init(arch):
    model = tiny_model(arch)
    before = model(_ids())
    add_adapter(model, PROLORA)
    trainable = {id(p) for p in trainable_parameters(model)}
    assert trainable == {id(p) for p in model.parameters() if p.requires_grad}
    assert all(".lora_" in name for name, p in model.named_parameters() if p.requires_grad)
    assert len(adapter_modules(model)) == (8 if arch == "gpt2" else 14)
    torch.testing.assert_close(model(_ids()), before, rtol=0, atol=0)


@pytest.mark.parametrize("settings", [PROLORA, LORA], ids=["prolora", "lora"])
def test_counts_match_the_formula_and_the_parameters(settings):
    model = add_adapter(tiny_model("gpt2"), settings)
    counts = parameter_counts(model)
    assert counts.adapter == sum(p.numel() for p in trainable_parameters(model))
    modules = adapter_modules(model)
    for matrix in counts.matrices:
        module = modules[matrix.name]
        own = [p for name, p in module.named_parameters() if name.startswith("lora_")]
        assert matrix.adapter == sum(p.numel() for p in own)
        assert matrix.lora == settings.r * (matrix.d_in + matrix.d_out)
    assert counts.base == sum(p.numel() for p in tiny_model("gpt2").parameters())
    line = counts.summary()
    assert "\n" not in line and settings.method in line and f"{counts.adapter:,}" in line


def test_llama2_7b_counts_from_the_paper():
    shapes = [(4096, 4096)] * 4 + [(4096, 11008)] * 2 + [(11008, 4096)]
    lora = 32 * sum(matrix_parameters(i, o, PeftSettings(method="lora", r=8)) for i, o in shapes)
    pro = 32 * sum(matrix_parameters(i, o, PeftSettings(method="prolora", r=8)) for i, o in shapes)
    assert lora == 19_988_480 and pro * 2 == lora


@pytest.mark.parametrize("settings", [PROLORA, LORA], ids=["prolora", "lora"])
def test_training_changes_only_the_adapter(settings):
    model = tiny_model("gpt2")
    base = {id(p): (p, p.detach().clone()) for p in model.parameters()}
    add_adapter(model, settings)
    model.train()
    params = trainable_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.1)
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in params} and not held & set(base)
    start = [p.detach().clone() for p in params]
    ids = _ids()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(param, copy) for param, copy in base.values())
    assert all(p.grad is None for p, _ in base.values())
    assert all(not torch.equal(p, s) for p, s in zip(params, start) if p.numel())


# ---------------------------------------------------------------------- LoRA equivalence and merge
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("case", [{"u": 4}, {"u": 0, "m": 1, "n": 1}], ids=["u=r", "m=n=1"])
def test_prolora_without_sharing_equals_stock_lora(arch, case):
    pro = _adapted(arch, PeftSettings(method="prolora", r=4, alpha=8.0, **case))
    lora = add_adapter(tiny_model(arch), LORA)
    lora_modules = adapter_modules(lora)
    with torch.no_grad():
        for name, module in adapter_modules(pro).items():
            a, b = module.lora_factors()
            lora_modules[name].lora_A["default"].weight.copy_(a)
            lora_modules[name].lora_B["default"].weight.copy_(b)
    torch.testing.assert_close(pro(_ids()), lora(_ids()), rtol=0, atol=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
@pytest.mark.parametrize("settings", [PROLORA, LORA], ids=["prolora", "lora"])
def test_merge_is_exact(arch, settings):
    model = _adapted(arch, settings)
    before = model(_ids())
    merge_adapter(model)
    assert not adapter_modules(model) and not hasattr(model.backbone, "peft_config")
    assert set(linear_layers(model.backbone)) == set(linear_layers(tiny_model(arch).backbone))
    assert not any(isinstance(m, PRoLoRALinear) for m in model.modules())
    torch.testing.assert_close(model(_ids()), before, rtol=0, atol=1e-5)
    assert sorted(model.state_dict()) == sorted(tiny_model(arch).state_dict())


# ---------------------------------------------------------------------- save / load
@pytest.mark.parametrize("settings", [PROLORA, LORA], ids=["prolora", "lora"])
def test_save_load_round_trip(tmp_path, settings):
    model = _adapted("llama", settings)
    save_adapter(model, tmp_path / "adapter", base="runs/peft-base")
    config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG).read_text())
    assert config["method"] == settings.method and config["base"] == "runs/peft-base"
    assert PeftSettings.from_dict(config["settings"]) == settings
    assert (tmp_path / "adapter" / ADAPTER_WEIGHTS).is_file()
    loaded = load_adapter(tiny_model("llama"), tmp_path / "adapter")
    assert torch.equal(loaded(_ids()), model(_ids()))
    saved, again = adapter_state_dict(model), adapter_state_dict(loaded)
    assert saved.keys() == again.keys() and all(torch.equal(saved[k], again[k]) for k in saved)


def test_load_errors_are_one_line_and_leave_the_model_alone(tmp_path):
    with pytest.raises(AdapterError, match="does not exist") as err:
        load_adapter(tiny_model("gpt2"), tmp_path / "nowhere")
    assert "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterError, match="not a dlm adapter folder"):
        load_adapter(tiny_model("gpt2"), tmp_path / "empty")
    save_adapter(_adapted("gpt2", PROLORA), tmp_path / "adapter", base="small-gpt2")
    wider = DiffusionLM(
        build_backbone(
            backbone_config("gpt2", vocab_size=VOCAB, hidden_size=48, num_layers=2, num_heads=4)
        ),
        DiffusionConfig(mask_token_id=2),
    )
    with pytest.raises(AdapterError, match=r"shape .* small-gpt2") as err:
        load_adapter(wider, tmp_path / "adapter")
    assert "\n" not in str(err.value)
    assert not adapter_modules(wider) and all(p.requires_grad for p in wider.parameters())
    with pytest.raises(AdapterError, match="do not match"):
        load_adapter(tiny_model("llama"), tmp_path / "adapter")


# ---------------------------------------------------------------------- export to stock peft
@pytest.mark.parametrize(
    ("arch", "settings"),
    [("gpt2", PROLORA), ("llama", PROLORA), ("gpt2", LORA)],
    ids=["gpt2-prolora", "llama-prolora", "gpt2-lora"],
)
def test_exported_adapter_loads_in_stock_peft(tmp_path, arch, settings):
    model = _adapted(arch, settings)
    expected = model(_ids())
    assert not torch.allclose(tiny_model(arch)(_ids()), expected, atol=1e-3)  # the adapter acts
    export_peft(model, tmp_path / "export", base="tiny-base")
    config = json.loads((tmp_path / "export" / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["lora_alpha"] == 8.0
    assert config["fan_in_fan_out"] is (arch == "gpt2")
    assert config["base_model_name_or_path"] == "tiny-base"
    assert (tmp_path / "export" / PEFT_WEIGHTS).is_file()
    fresh = tiny_model(arch)  # the same base weights
    peft_model = PeftModel.from_pretrained(fresh.backbone, tmp_path / "export")
    torch.testing.assert_close(fresh(_ids()), expected, rtol=0, atol=1e-5)
    fresh.backbone = peft_model.merge_and_unload()
    torch.testing.assert_close(fresh(_ids()), expected, rtol=0, atol=1e-5)
