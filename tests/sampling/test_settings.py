"""``SamplerSettings``: validation in one place, layered resolution, generated CLI flags."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from dlm.errors import DlmUserError, SettingsError
from dlm.sampling import SamplerSettings, generate, settings_for
from helpers import tiny_model


def test_defaults_and_every_field_has_help():
    s = SamplerSettings()
    assert (s.policy, s.schedule, s.cache, s.block_start, s.stop_at_eos) == (
        "confidence",
        "linear",
        "none",
        "any",
        True,
    )
    assert s.steps_for(24) == 24 and SamplerSettings(steps=6).steps_for(24) == 6
    for f in dataclasses.fields(SamplerSettings):
        assert f.metadata["help"], f.name


@pytest.mark.parametrize(
    "values, message",
    [
        ({"top_p": 1.5}, r"'top_p' must be in \(0, 1\]; got 1.5"),
        ({"steps": 0}, r"'steps' must be in \[1, inf\); got 0"),
        ({"steps": 2.5}, "'steps' takes a whole number; got 2.5"),
        ({"temperature": -1.0}, r"'temperature' must be in \[0, inf\)"),
        ({"schedule": "cosine"}, "'schedule' must be one of: linear, dream; got 'cosine'"),
        ({"stop_at_eos": "maybe"}, "'stop_at_eos' takes a bool"),
        ({"policy": "remask", "cache": "dual"}, "policy 'remask' re-predicts the whole canvas"),
        ({"schedule": "dream", "threshold": 0.9}, "schedule='dream' sets fixed step counts"),
        ({"compile": True, "cache": "prefix"}, "compile=True needs cache='none'"),
    ],
)
def test_bad_values_name_the_field_and_what_it_allows(values, message):
    with pytest.raises(SettingsError, match=message) as err:
        SamplerSettings(**values)
    assert isinstance(err.value, DlmUserError) and "\n" not in str(err.value)


def test_strings_parse_as_the_field_types():
    assert SamplerSettings.coerce("steps", "8") == 8
    assert SamplerSettings.coerce("top_p", "0.9") == 0.9
    assert SamplerSettings.coerce("stop_at_eos", "false") is False
    assert SamplerSettings.coerce("block_length", "none") is None
    with pytest.raises(SettingsError, match="unknown sampler setting 'stpes'; did you mean 'steps'"):
        SamplerSettings.coerce("stpes", 3)


def test_precedence_argument_over_request_over_checkpoint_over_defaults():
    resolved = SamplerSettings.resolve(
        {"steps": 4, "top_p": None},  # None: not given, the lower layers show through
        request={"steps": 8, "temperature": 0.7, "policy": "margin"},
        checkpoint={"steps": 512, "temperature": 1.0, "policy": "random", "top_p": 0.9, "eps": 0.01},
        defaults={"max_new_tokens": 32, "policy": "entropy"},
    )
    s = resolved.settings
    assert (s.steps, s.temperature, s.policy, s.top_p, s.eps, s.max_new_tokens) == (
        4,
        0.7,
        "margin",
        0.9,
        0.01,
        32,
    )
    assert resolved.sources["steps"] == "argument"
    assert resolved.sources["temperature"] == "request"
    assert resolved.sources["top_p"] == "checkpoint"
    assert resolved.sources["max_new_tokens"] == "command default"
    assert resolved.sources["cache"] == "default"
    text = resolved.describe()
    assert "steps              = 4            (argument)" in text
    assert len(text.splitlines()) == len(SamplerSettings.field_names())


def test_an_unknown_key_in_any_layer_is_an_error_with_a_suggestion():
    with pytest.raises(SettingsError, match="unknown sampler request setting 'temprature'"):
        SamplerSettings.resolve({}, request={"temprature": 1.0})


def test_replace_ignores_none_and_validates():
    base = SamplerSettings(steps=4, policy="margin")
    assert base.replace(steps=None, top_k=3) == SamplerSettings(steps=4, policy="margin", top_k=3)
    with pytest.raises(SettingsError):
        base.replace(top_k=-1)


def test_cli_flags_are_generated_from_every_field():
    parser = argparse.ArgumentParser()
    SamplerSettings.add_arguments(parser)
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests == set(SamplerSettings.field_names())
    args = parser.parse_args(["--steps", "3", "--no-stop-at-eos", "--schedule", "dream"])
    assert SamplerSettings.from_arguments(args) == {
        "steps": 3,
        "stop_at_eos": False,
        "schedule": "dream",
    }
    assert SamplerSettings.from_arguments(parser.parse_args([])) == {}  # unset flags stay unset
    with pytest.raises(SystemExit):
        parser.parse_args(["--policy", "best"])


def test_generate_lays_arguments_over_the_checkpoint_defaults():
    model = tiny_model()
    model.generation_defaults = {"steps": 2, "policy": "random", "seed": 5}
    prompts = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(0))
    resolved = settings_for(model, max_new_tokens=6, policy="confidence")
    assert (resolved.steps, resolved.policy, resolved.seed) == (2, "confidence", 5)
    out = generate(model, prompts, max_new_tokens=6, policy="confidence")
    assert out.settings == resolved and out.nfe <= 2
    explicit = generate(model, prompts, settings=SamplerSettings(max_new_tokens=6, steps=6))
    assert explicit.settings.steps == 6  # a settings object is used as given, not re-layered
    same = generate(model, prompts, max_new_tokens=6, policy="confidence", steps=2, seed=5)
    assert torch.equal(same.sequences, out.sequences)


def test_generate_needs_a_length():
    with pytest.raises(SettingsError, match="give max_new_tokens"):
        generate(tiny_model(), torch.randint(5, 40, (1, 3)))


def test_generate_restores_training_mode_when_it_raises():
    model = tiny_model().train()
    ids, mask = torch.randint(5, 40, (2, 3)), torch.tensor([[1, 1, 1], [0, 0, 0]])
    with pytest.raises(DlmUserError, match="at least one token"):  # raised inside the loop
        generate(model, ids, mask, max_new_tokens=4, cache="prefix", block_length=2)
    assert model.training
    generate(model, torch.randint(5, 40, (1, 3)), max_new_tokens=4)
    assert model.training


class HostReads:
    """Counts the reads of device values into Python (each a host sync on a GPU)."""

    NAMES = ("__bool__", "item", "tolist", "__int__", "__float__", "nonzero")

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> HostReads:
        self.saved = {name: getattr(torch.Tensor, name) for name in self.NAMES}
        for name, method in self.saved.items():
            setattr(torch.Tensor, name, self._counting(method))
        return self

    def _counting(self, method):
        def wrapper(tensor, *args, **kwargs):
            self.count += 1
            return method(tensor, *args, **kwargs)

        return wrapper

    def __exit__(self, *exc) -> None:
        for name, method in self.saved.items():
            setattr(torch.Tensor, name, method)


def _reads(model, prompts, **options) -> tuple[int, int]:
    with HostReads() as reads:
        out = generate(model, prompts, max_new_tokens=16, stop_at_eos=False, **options)
    return reads.count, out.nfe


@pytest.mark.parametrize("policy", ["confidence", "random"])
@pytest.mark.parametrize("schedule", ["linear", "dream"])
def test_fixed_schedules_read_the_device_per_block_not_per_step(policy, schedule):
    model = tiny_model()
    prompts = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(0))
    few, nfe_few = _reads(model, prompts, steps=4, policy=policy, schedule=schedule)
    many, nfe_many = _reads(model, prompts, steps=16, policy=policy, schedule=schedule)
    assert nfe_many > nfe_few
    assert many == few  # the same reads for 4x the steps
    blocks, _ = _reads(model, prompts, steps=16, block_length=4, policy=policy, schedule=schedule)
    assert blocks > many  # a few reads per block


def test_adaptive_rules_read_once_per_step():
    model = tiny_model()
    prompts = torch.randint(5, 40, (2, 3), generator=torch.Generator().manual_seed(0))
    low, nfe_low = _reads(model, prompts, threshold=0.0)  # everything in one step
    high, nfe_high = _reads(model, prompts, threshold=1.0)  # one token per step: 16 steps
    assert nfe_high == 16 and nfe_high > nfe_low
    assert high - low == nfe_high - nfe_low


def test_off_switches_an_optional_setting_off_over_the_checkpoint():
    checkpoint = {"threshold": 0.9, "block_length": 8, "top_p": 0.9}
    resolved = SamplerSettings.resolve({"threshold": "off", "block_length": "off"}, checkpoint=checkpoint)
    s = resolved.settings
    assert (s.threshold, s.block_length, s.top_p) == (None, None, 0.9)
    assert resolved.sources["threshold"] == "argument"
    parser = argparse.ArgumentParser()
    SamplerSettings.add_arguments(parser)
    flags = SamplerSettings.from_arguments(parser.parse_args(["--threshold", "off"]))
    assert SamplerSettings.resolve(flags, checkpoint=checkpoint).settings.threshold is None
    assert SamplerSettings(threshold=0.5).replace(threshold="off").threshold is None


def test_pinned_tokens_survive_an_eos_the_model_writes_before_them():
    model = tiny_model()
    bias = torch.zeros(40)
    bias[3] = 8.0  # EOS_ID wins everywhere
    model.backbone.get_output_embeddings().register_forward_hook(lambda m, i, out: out + bias)
    fixed = torch.full((1, 8), -1)
    fixed[0, 6:] = 11
    out = generate(model, torch.tensor([[5, 6, 7, 8]]), fixed=fixed, max_new_tokens=8, steps=8)
    region = out.generated[0].tolist()
    assert region[0] == 3 and region[6:] == [11, 11]  # EOS, padding, then the pinned tokens


def test_settings_of_the_wrong_type_are_a_clear_error():
    with pytest.raises(SettingsError, match="settings must be a SamplerSettings; got dict"):
        generate(tiny_model(), torch.randint(5, 40, (1, 3)), settings={"max_new_tokens": 4})
