"""Tiny random models shared by the tests."""

from __future__ import annotations

from dlm.models import DiffusionConfig, DiffusionLM, backbone_config, build_backbone

VOCAB = 40
MASK_ID, PAD_ID, EOS_ID = 2, 0, 3


def tiny_model(
    arch: str = "gpt2",
    *,
    shift: bool = True,
    attention: str = "bidirectional",
    seed: int = 0,
    max_positions: int = 64,
    vocab: int = VOCAB,
    block_size: int | None = None,
) -> DiffusionLM:
    config = backbone_config(
        arch,
        vocab_size=vocab,
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        max_positions=max_positions,
    )
    backbone = build_backbone(config, seed=seed)
    cfg = DiffusionConfig(
        mask_token_id=MASK_ID,
        shift=shift,
        attention=attention,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        block_size=block_size,
    )
    return DiffusionLM(backbone, cfg).eval()


#: ``dlm train`` overrides for the smallest model the CLI tests train (one layer, width 32).
TINY_MODEL = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2"]
#: 4x4 Sudoku with few givens: short sequences, quick to generate.
SUDOKU_4X4 = "data.task_options={box_rows: 2, box_cols: 2, min_givens: 6, max_givens: 9}"
