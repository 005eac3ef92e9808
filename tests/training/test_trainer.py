import json

import pytest
import torch

from dlm.models import DiffusionLM
from dlm.training import (
    Trainer,
    TrainingDivergedError,
    build_model,
    load_train_config,
    prepare_data,
    train,
)
from dlm.training.checkpoints import list_checkpoints


def tiny_config(tmp_path, *extra):
    return load_train_config(
        None,
        [
            "data.task=sudoku",
            "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}",
            "data.n_train=120",
            "data.n_eval=8",
            "model.hidden_size=32",
            "model.num_layers=2",
            "model.num_heads=2",
            "model.max_positions=40",
            "optim.batch_size=8",
            "optim.max_steps=6",
            "optim.lr=3e-3",
            "progress=false",
            "log_every=1",
            f"output_dir={tmp_path}",
            *extra,
        ],
    )


def test_training_lowers_the_loss_and_saves_a_loadable_model(tmp_path):
    cfg = tiny_config(
        tmp_path, "optim.max_steps=40", "optim.warmup_steps=0", "optim.scheduler=constant"
    )
    result, prepared = train(cfg)
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.8 * first
    model = DiffusionLM.from_pretrained(result.model_dir)
    assert model.config.mask_token_id == prepared.tokenizer.mask_token_id
    assert (tmp_path / "train_config.yaml").is_file()
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))


def test_ar_objective_trains_a_causal_model(tmp_path):
    cfg = tiny_config(tmp_path, "objective=ar", "optim.max_steps=30", "optim.scheduler=constant")
    result, _ = train(cfg)
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    model = DiffusionLM.from_pretrained(result.model_dir)
    assert model.is_autoregressive and model.config.shift


def _fit(cfg):
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.tokenizer)
    return Trainer(cfg, model, prepared.tokenizer, prepared.train).fit()


@pytest.mark.parametrize("attention", ["bidirectional", "annealed"])
def test_resumed_run_reproduces_the_uninterrupted_losses(tmp_path, attention):
    extra = [
        f"model.attention={attention}",
        "model.anneal_steps=4",
        "model.dropout=0.1",
        "optim.grad_accum=2",
    ]
    full = _fit(tiny_config(tmp_path / "full", *extra))
    _fit(tiny_config(tmp_path / "part", *extra, "optim.max_steps=6", "save_every=3"))
    # a fresh run that resumes from step 3 of the interrupted one
    part_dir = tmp_path / "part"
    ckpts = list_checkpoints(part_dir)
    assert [p.name for p in ckpts] == ["checkpoint-3", "checkpoint-6"]
    resumed = _fit(tiny_config(part_dir, *extra, f"resume={ckpts[0]}"))
    assert len(resumed.losses) == 3
    assert resumed.losses == pytest.approx(full.losses[3:], rel=1e-6, abs=1e-7)
    state = json.loads((ckpts[0] / "trainer_state.json").read_text())
    assert state["step"] == 3


def test_checkpoints_are_atomic_and_pruned(tmp_path):
    _fit(tiny_config(tmp_path, "save_every=1", "keep_last=2"))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in names if n.startswith("checkpoint-")] == ["checkpoint-5", "checkpoint-6"]
    assert not [n for n in names if n.startswith(".tmp")]
    DiffusionLM.from_pretrained(tmp_path / "checkpoint-5" / "model")


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config(tmp_path, "save_every=2")
    prepared = prepare_data(cfg)
    model = build_model(cfg, prepared.tokenizer)
    trainer = Trainer(cfg, model, prepared.tokenizer, prepared.train)
    real = trainer.objective

    def poisoned(model, batch, step):
        out = real(model, batch, step)
        if step == 3:
            out.loss = out.loss * float("nan")
        return out

    trainer.objective = poisoned
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at step 4.*checkpoint-2"):
        trainer.fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2"]
    assert not (tmp_path / "model").exists()
    DiffusionLM.from_pretrained(tmp_path / "checkpoint-2" / "model")


def test_sequences_longer_than_the_model_are_refused(tmp_path):
    cfg = tiny_config(tmp_path, "model.max_positions=16")
    with pytest.raises(
        ValueError, match="training sequences have 34 tokens but the model has 16 positions"
    ):
        _fit(cfg)


def test_batch_larger_than_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fewer than one global batch"):
        _fit(tiny_config(tmp_path, "optim.batch_size=500"))


def test_diffusion_loss_only_touches_the_target_region(tmp_path):
    cfg = tiny_config(tmp_path)
    prepared = prepare_data(cfg)
    data = prepared.train
    sep = prepared.tokenizer.sep_token_id
    for row in range(len(data)):
        sep_at = int((data.input_ids[row] == sep).nonzero()[0])
        assert not data.noisable[row, : sep_at + 1].any() and data.noisable[row, sep_at + 1 :].all()
    assert torch.equal(data.loss_mask, data.noisable)  # 2x2 sudoku targets have no padding


def test_pretrain_on_a_text_file_with_a_saved_tokenizer(tmp_path, char_tokenizer):
    char_tokenizer.save_pretrained(tmp_path / "tok")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("abcdefghij"[i:] + "0123456789"[: i + 3] for i in range(10)) * 4)
    cfg = load_train_config(
        None,
        [
            "objective=pretrain",
            f"data.train_file={corpus}",
            f"data.tokenizer={tmp_path / 'tok'}",
            "data.seq_len=16",
            "model.hidden_size=32",
            "model.num_layers=1",
            "model.num_heads=2",
            "model.max_positions=16",
            "model.attention=annealed",
            "model.anneal_steps=3",
            "optim.batch_size=4",
            "optim.max_steps=4",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    prepared = prepare_data(cfg)
    assert prepared.train.seq_len == 16 and prepared.train.noisable.all()
    result, _ = train(cfg)
    assert result.steps == 4 and all(torch.isfinite(torch.tensor(result.losses)))
    assert DiffusionLM.from_pretrained(result.model_dir).config.attention == "annealed"


def test_continue_training_an_hf_causal_lm_with_a_new_mask_token(tmp_path, char_tokenizer):
    from transformers import AutoTokenizer

    from dlm.models import backbone_config, build_backbone

    base = tmp_path / "base"
    build_backbone(
        backbone_config(
            "llama",
            vocab_size=len(char_tokenizer),
            hidden_size=32,
            num_layers=1,
            num_heads=2,
            max_positions=40,
        )
    ).save_pretrained(base)
    char_tokenizer.save_pretrained(base)
    src = tmp_path / "pairs.jsonl"
    src.write_text(
        "".join(f'{{"prompt": "{i}{i + 1}", "target": "{i + 2}{i + 3}"}}\n' for i in range(6))
    )
    cfg = load_train_config(
        None,
        [
            f"model.init={base}",
            "model.mask_token=<|mask|>",
            f"data.train_file={src}",
            "optim.batch_size=2",
            "optim.max_steps=2",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    result, prepared = train(cfg)
    model = DiffusionLM.from_pretrained(result.model_dir)
    assert model.config.mask_token_id == len(char_tokenizer)
    assert model.vocab_size == len(char_tokenizer) + 1
    assert AutoTokenizer.from_pretrained(result.model_dir).mask_token == "<|mask|>"
