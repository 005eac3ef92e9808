"""AR-to-diffusion adaptation: a causal model written by the trainer is the start of an
annealed diffusion run (model.init), keeping its weights, mask token and vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dlm.models import DiffusionLM
from dlm.training import load_train_config, train
from dlm.training.setup import build_model

TINY = [
    "data.task=sudoku",
    "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
    "data.n_train=32",
    "data.n_eval=4",
    "model.hidden_size=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.max_positions=40",
    "optim.batch_size=8",
    "optim.max_steps=2",
    "progress=false",
]


def test_adapt_a_causal_model_with_annealed_attention(tmp_path) -> None:
    ar_config = load_train_config(
        None, [*TINY, "objective=ar", "model.attention=causal", f"output_dir={tmp_path / 'ar'}"]
    )
    ar_result, prepared = train(ar_config)
    ar_model = DiffusionLM.from_pretrained(ar_result.model_dir)
    assert ar_model.is_autoregressive

    overrides = [
        *TINY,
        "objective=sft",
        f"model.init={ar_result.model_dir}",
        "model.attention=annealed",
        "model.anneal_steps=4",
        "model.shift=true",
        f"output_dir={tmp_path / 'a2d'}",
        "log_every=1",
    ]
    config = load_train_config(None, overrides)
    start = build_model(config, prepared.tokenizer)
    assert start.config.attention == "annealed" and start.config.shift
    assert start.config.mask_token_id == prepared.tokenizer.mask_token_id
    for (name, a), b in zip(
        ar_model.backbone.state_dict().items(), start.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name  # the AR weights are the starting point, unchanged

    seen: list[float] = []
    result, _ = train(config, callbacks=[lambda step, m: seen.append(m.get("anneal_ratio", -1))])
    assert result.steps == 2
    assert len(seen) == 2 and 0.0 <= seen[0] < seen[1] <= 1.0  # causal -> bidirectional
    adapted = DiffusionLM.from_pretrained(result.model_dir)
    assert adapted.config.attention == "annealed" and not adapted.is_autoregressive


def test_a_missing_local_init_directory_is_a_clear_error(tmp_path) -> None:
    from dlm.config import ConfigError
    from dlm.training.setup import prepare_data

    missing = tmp_path / "runs" / "never-trained" / "model"
    config = load_train_config(
        None, [*TINY, f"model.init={missing}", f"output_dir={tmp_path / 'out'}"]
    )
    with pytest.raises(ConfigError, match="is not a directory. Train the run that writes it"):
        build_model(config, prepare_data(config).tokenizer)
    with pytest.raises(ConfigError, match="is not a directory"):
        train(config)  # refused before the trainer writes anything
    assert not (tmp_path / "out").exists()


def test_the_path_adaptation_recipe_starts_from_the_path_ar_recipe() -> None:
    from dlm.config import to_dict

    recipes = Path(__file__).resolve().parents[2] / "recipes" / "path"
    adapted = load_train_config(str(recipes / "adapted.yaml"))
    ar = load_train_config(str(recipes / "ar.yaml"))
    assert adapted.model.init == f"{ar.output_dir}/model"
    assert adapted.objective == "sft" and adapted.model.attention == "annealed"
    assert adapted.model.shift  # the AR model's next-token outputs stay aligned
    assert to_dict(adapted)["data"] == to_dict(ar)["data"]
