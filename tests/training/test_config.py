from pathlib import Path

import pytest

from dlm.config import ConfigError, load_config
from dlm.training import TrainConfig, load_train_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(
        ConfigError,
        match=r"unknown config key 'optim.learning_rat'; did you mean 'optim.lr'|unknown config key 'optim.learning_rat'",
    ):
        load_train_config(None, ["optim.learning_rat=1e-3"])
    with pytest.raises(
        ConfigError, match=r"unknown config key 'optim.max_step'; did you mean 'optim.max_steps'\?"
    ):
        load_train_config(None, ["optim.max_step=10"])
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'; did you mean 'model'\?"):
        load_train_config(None, ["modle.arch=gpt2"])


def test_overrides_are_typed():
    cfg = load_train_config(
        None,
        [
            "optim.lr=3e-4",
            "optim.max_steps=12",
            "model.shift=false",
            "optim.betas=[0.9,0.95]",
            "data.task_options={box_rows: 2}",
        ],
    )
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.max_steps == 12 and cfg.model.shift is False
    assert cfg.optim.betas == [0.9, 0.95]
    assert cfg.data.task_options == {"box_rows": 2}


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.max_steps=ten", "optim.max_steps must be an integer"),
        ("model.shift=maybe", "model.shift must be true or false"),
        ("model.attention=sideways", "model.attention must be one of"),
        ("optim.lr", "must look like key=value"),
        ("optim.max_steps=0", "optim.max_steps must be at least 1"),
        ("model.num_heads=3", r"model.hidden_size \(128\) must be a multiple of model.num_heads"),
        ("diffusion.schedule=discrete", "diffusion.schedule=discrete needs diffusion.num_steps"),
        ("diffusion.weighting=linear", "needs diffusion.schedule=discrete"),
        ("diffusion.eps=1.5", r"diffusion.eps must lie in \[0, 1\)"),
        ("diffusion.cart_p=0", r"diffusion.cart_p must lie in \(0, 1\)"),
        ("diffusion.scheduled_min_prob=2", r"scheduled_min_prob must lie in \[0, 1\]"),
    ],
)
def test_bad_values_are_clear_errors(override, message):
    overrides = [override, "diffusion.weighting=cart"] if "cart_p" in override else [override]
    with pytest.raises(ConfigError, match=message):
        load_train_config(None, overrides)


def test_diffusion_objective_refuses_causal_attention():
    with pytest.raises(ConfigError, match="needs non-causal attention"):
        load_train_config(None, ["objective=sft", "model.attention=causal"])
    assert load_train_config(None, ["objective=ar"]).model.attention == "causal"


def test_missing_and_invalid_recipe_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_train_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(TrainConfig, bad)


def test_every_shipped_recipe_loads():
    recipes = sorted(RECIPES.rglob("*.yaml"))
    assert recipes, "no recipes shipped"
    for path in recipes:
        load_train_config(str(path))


def test_paper_scale_recipes_keep_mgdm_gpt2_whatever_their_base_uses():
    # a paper recipe inherits its CPU recipe, which may switch to rotary positions; MGDM's
    # models are GPT-2 with shifted logits: "tiny" (3 x 384 x 12) for Sudoku and path, base
    # (12 x 768 x 12) for Countdown
    expected = {"sudoku": (3, 384, 12), "path": (3, 384, 12), "countdown": (12, 768, 12)}
    papers = {p.parent.name: p for p in RECIPES.glob("*/paper.yaml")}
    assert set(papers) == set(expected)
    for task, path in papers.items():
        model = load_train_config(str(path)).model
        shape = (model.num_layers, model.hidden_size, model.num_heads)
        assert (model.arch, model.shift, shape) == ("gpt2", True, expected[task]), path


def test_ar_twins_match_their_diffusion_recipe_in_data_budget_and_backbone():
    import yaml

    from dlm.config import to_dict

    twins = [
        p for p in RECIPES.rglob("*.yaml") if p.name == "ar.yaml" or p.name.endswith("-ar.yaml")
    ]
    assert len(twins) >= 8
    for ar_path in sorted(twins):
        # a twin names its diffusion recipe as base; the demo's standalone pair is ar/diffusion
        name = yaml.safe_load(ar_path.read_text()).get("base", "diffusion.yaml")
        diffusion_path = ar_path.parent / name
        ar, diffusion = (to_dict(load_train_config(str(p))) for p in (ar_path, diffusion_path))
        assert ar["objective"] == "ar" and ar["model"]["attention"] == "causal", ar_path
        for key in ("data", "optim"):
            assert ar[key] == diffusion[key], (ar_path, key)
        for key in ("arch", "hidden_size", "num_layers", "num_heads"):
            assert ar["model"][key] == diffusion["model"][key], (ar_path, key)


def test_sudoku_recipe_is_the_demo_run():
    from dlm.config import to_dict
    from dlm.demo import demo_config

    recipe = load_train_config(str(RECIPES / "sudoku" / "diffusion.yaml"))
    demo = demo_config(recipe.output_dir)
    demo.progress = recipe.progress
    assert to_dict(recipe) == to_dict(demo)


def test_yaml_no_is_read_as_the_string_option():
    assert load_train_config(None, ["optim.mixed_precision=no"]).optim.mixed_precision == "no"
    assert load_train_config(None, ["optim.mixed_precision=bf16"]).optim.mixed_precision == "bf16"


def test_a_recipe_can_start_from_a_base_recipe(tmp_path) -> None:
    (tmp_path / "diffusion.yaml").write_text(
        "objective: sft\nmodel: {hidden_size: 96, num_layers: 3}\noptim: {lr: 0.001, max_steps: 50}\n"
    )
    (tmp_path / "ar.yaml").write_text(
        "base: diffusion.yaml\nobjective: ar\nmodel: {attention: causal}\noptim: {max_steps: 70}\n"
    )
    config = load_train_config(str(tmp_path / "ar.yaml"), ["optim.lr=3e-4"])
    assert config.objective == "ar" and config.model.attention == "causal"
    assert config.model.hidden_size == 96 and config.model.num_layers == 3
    assert config.optim.max_steps == 70 and config.optim.lr == 3e-4
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_train_config(str(tmp_path / "a.yaml"))
    (tmp_path / "c.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml does not exist"):
        load_train_config(str(tmp_path / "c.yaml"))
