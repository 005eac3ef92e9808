"""Training block-diffusion models: the recipe fields, complementary masks, CART's block
context, block-size annealing from an AR parent, and a trained model that samples."""

from __future__ import annotations

import pytest
import torch

from dlm.config import ConfigError
from dlm.data import SequenceData
from dlm.diffusion import cart_weights, make_schedule
from dlm.models import DiffusionConfig, DiffusionLM
from dlm.sampling import generate
from dlm.training import load_train_config, train
from dlm.training.objectives import DiffusionObjective
from dlm.training.setup import build_model

TINY = [
    "data.task=sudoku",
    "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
    "data.n_train=64",
    "data.n_eval=4",
    "model.hidden_size=32",
    "model.num_layers=2",
    "model.num_heads=2",
    "model.max_positions=40",
    "optim.batch_size=8",
    "progress=false",
    "log_every=1",
]


def test_cart_context_of_a_block_is_its_clean_past_and_its_own_clean_tokens():
    # blocks {0, 1} and {2, 3}; p = 0.5; position 1 and 2 masked
    masked = torch.tensor([[False, True, True, False]])
    w = cart_weights(masked, p=0.5, block_size=2)
    k = lambda d: 0.5 * 0.5 * 0.5 ** (d - 1)  # noqa: E731  (1/2 p (1-p)^(d-1))
    w1 = k(1)  # position 0 (clean, same block); block 1 is not seen
    w2 = k(2) + k(1) + k(1)  # block 0 whole (the clean copy: distances 2, 1) and clean 3 (1)
    assert torch.allclose(w, torch.tensor([[0.0, w1, w2, 0.0]]))
    # one block as long as the row: the usual CART
    assert torch.allclose(cart_weights(masked, 0.5, block_size=4), cart_weights(masked, 0.5))


class _Recorder(torch.nn.Module):
    """Stands in for a model: records what the objective feeds it, returns uniform logits."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.calls = []

    def forward(self, noisy, attention_mask=None, **kwargs):
        self.calls.append((noisy, kwargs))
        return self.scale * torch.zeros(*noisy.shape, 16)


def _batch():
    ids = torch.randint(4, 16, (6, 12), generator=torch.Generator().manual_seed(0))
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    noisable[:, 4:] = True
    return SequenceData(ids, noisable, None, noisable)


def test_complementary_masks_cover_every_noisable_token_exactly_once():
    model = _Recorder(DiffusionConfig(mask_token_id=1))
    objective = DiffusionObjective(make_schedule("linear"), complementary=True)
    batch = _batch()
    objective(model, batch, step=0)
    noisy, _ = model.calls[0]
    assert noisy.shape == (12, 12)
    a, b = noisy[:6] == 1, noisy[6:] == 1
    assert torch.equal(a ^ b, batch.noisable) and not (a & b).any()


def test_block_objective_feeds_the_clean_copy_and_the_annealed_block_size():
    model = _Recorder(DiffusionConfig(mask_token_id=1, attention="block_causal", block_size=8, anneal_steps=100))
    objective = DiffusionObjective(make_schedule("linear"))
    batch = _batch()
    sizes = []
    for step in (0, 50, 99):
        loss = objective(model, batch, step)
        sizes.append(model.calls[-1][1]["block_size"])
        assert torch.equal(model.calls[-1][1]["clean"], batch.input_ids)
        assert loss.metrics["block_size"] == sizes[-1]
    assert sizes[0] == 1 and sizes[-1] == 8 and sizes == sorted(sizes)


def test_recipe_fields_are_checked_before_work(tmp_path):
    with pytest.raises(ConfigError, match="needs model.block_size"):
        load_train_config(None, [*TINY, "model.attention=block_causal", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="drop model.block_size"):
        load_train_config(None, [*TINY, "model.block_size=4", f"output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="schedule=linear"):
        load_train_config(None, [*TINY, "diffusion.complementary=true", "diffusion.schedule=cosine"])
    with pytest.raises(ConfigError, match="scheduled_min_prob=1"):
        load_train_config(
            None,
            [*TINY, "model.attention=block_causal", "model.block_size=4", "diffusion.scheduled_min_prob=0.5"],
        )
    ar = load_train_config(None, [*TINY, "objective=ar", "model.attention=block_causal", "model.block_size=4"])
    assert ar.model.attention == "causal" and ar.model.block_size is None  # the AR twin


def test_a_block_model_trains_saves_and_samples_with_its_exact_cache(tmp_path):
    config = load_train_config(
        None,
        [*TINY, "model.attention=block_causal", "model.block_size=4", "diffusion.complementary=true",
         "diffusion.weighting=cart", "optim.max_steps=30", "optim.lr=3e-3", "optim.scheduler=constant",
         f"output_dir={tmp_path}"],
    )
    result, prepared = train(config)
    assert sum(result.losses[-5:]) < 0.8 * sum(result.losses[:5])
    model = DiffusionLM.from_pretrained(result.model_dir)
    assert model.config.attention == "block_causal" and model.config.block_size == 4
    ids = torch.tensor([prepared.tokenizer.encode("12")])
    exact = generate(model, ids, max_new_tokens=9, steps=9, cache="prefix")
    full = generate(model, ids, max_new_tokens=9, steps=9, cache="none")
    assert torch.equal(exact.sequences, full.sequences)


def test_adapt_an_ar_parent_to_block_diffusion_with_the_block_size_annealed(tmp_path):
    ar_config = load_train_config(None, [*TINY, "objective=ar", "optim.max_steps=2", f"output_dir={tmp_path / 'ar'}"])
    ar_result, prepared = train(ar_config)
    ar_model = DiffusionLM.from_pretrained(ar_result.model_dir)
    overrides = [
        *TINY,
        "objective=sft",
        f"model.init={ar_result.model_dir}",
        "model.attention=block_causal",
        "model.block_size=4",
        "model.anneal_steps=6",
        "optim.max_steps=6",
        f"output_dir={tmp_path / 'block'}",
    ]
    config = load_train_config(None, overrides)
    start = build_model(config, prepared.tokenizer)
    for (name, a), b in zip(
        ar_model.backbone.state_dict().items(), start.backbone.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    # at block size 1 the block-diffusion forward is the AR parent's next-token prediction
    ids = torch.tensor([prepared.tokenizer.encode("1234")])
    with torch.no_grad():
        noisy = ids.clone()
        noisy[:, 2:] = start.config.mask_token_id
        torch.testing.assert_close(start(noisy, clean=ids, block_size=1)[:, 1:], ar_model(ids)[:, 1:])
    seen = []
    result, _ = train(config, callbacks=[lambda step, m: seen.append(m.get("block_size"))])
    assert seen[0] == 1 and seen[-1] == 4 and seen == sorted(seen)
    assert DiffusionLM.from_pretrained(result.model_dir).config.block_size == 4


def test_the_block_adaptation_recipe_turns_an_hf_causal_lm_into_a_block_model(
    tmp_path, char_tokenizer
):
    from pathlib import Path

    from dlm.models import backbone_config, build_backbone

    base = tmp_path / "base"
    parent = build_backbone(
        backbone_config(
            "qwen2", vocab_size=len(char_tokenizer), hidden_size=32, num_layers=1, num_heads=2,
            max_positions=64,
        )
    )
    parent.save_pretrained(base)
    char_tokenizer.save_pretrained(base)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("abcdefghij"[i:] + "0123456789"[: i + 3] for i in range(10)) * 8)
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "adapt" / "block.yaml"
    config = load_train_config(
        str(recipe),
        [f"model.init={base}", f"data.tokenizer={base}", f"data.train_file={corpus}",
         "data.seq_len=16", "model.block_size=8", "model.anneal_steps=4", "optim.batch_size=4",
         "optim.grad_accum=1", "optim.max_steps=4", "optim.warmup_steps=0",
         "optim.mixed_precision=no", "progress=false", "log_every=1", "save_every=0",
         f"output_dir={tmp_path / 'run'}"],
    )
    # the recipe continues the A2D family: same objective, weighting and optimiser
    a2d = load_train_config(str(recipe.with_name("a2d.yaml")))
    assert (config.objective, config.diffusion.weighting, config.optim.lr) == (
        a2d.objective, a2d.diffusion.weighting, a2d.optim.lr
    )
    assert config.model.shift and config.diffusion.complementary
    seen = []
    result, _ = train(config, callbacks=[lambda step, m: seen.append(m.get("block_size"))])
    assert seen == [1, 2, 4, 8]  # from the AR parent (block size 1) up to the recipe's blocks
    model = DiffusionLM.from_pretrained(result.model_dir)
    assert (model.config.attention, model.config.block_size) == ("block_causal", 8)
    assert model.generation_defaults["cache"] == "prefix"  # the exact cache is the default
