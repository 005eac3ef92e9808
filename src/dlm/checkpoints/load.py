"""``load_published``: open a published diffusion-LM checkpoint as a native ``DiffusionLM``.

Every tensor is renamed by the family's table as it is read (cast to ``dtype`` on the way, so
a bfloat16 download never exists twice in float32), the native ``transformers`` class is built
from the mapped config with exactly those weights (a missing, unexpected or misshapen tensor
is an error, never a random initialisation), and the diffusion fields come from the source
config. No remote code runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import PretrainedConfig, PreTrainedModel

from dlm.models import DiffusionConfig
from dlm.models.diffusion_lm import DLM_CONFIG_NAME, DiffusionLM
from dlm.peft import ADAPTER_CONFIG, AdapterError, load_adapter, read_adapter_config

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

from .base import Family, Probe, UnsupportedCheckpointError
from .detect import match_family, probe
from .weights import iter_tensors, weight_files

__all__ = [
    "adapter_base",
    "build_backbone",
    "is_adapter_dir",
    "load_adapted",
    "load_family",
    "load_model",
    "load_published",
    "native_state",
]


def _fail(found: Probe, family: Family, what: str, names: list[str]) -> None:
    if names:
        shown = ", ".join(sorted(names)[:8]) + (
            f" (+{len(names) - 8} more)" if len(names) > 8 else ""
        )
        raise UnsupportedCheckpointError(
            f"{found.directory} looks like a {family.name} checkpoint but has {what}: {shown}"
        )


def native_state(
    family: Family, found: Probe, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under native names (a tied head stored alone fills the embedding)."""
    state: dict[str, torch.Tensor] = {}
    unmapped, duplicated = [], []
    for name, tensor in iter_tensors(found.directory, dtype):
        pairs = family.convert(found, name, tensor)
        if pairs is None:
            if not any(re.fullmatch(p, name) for p in family.ignore):
                unmapped.append(name)
            continue
        for native, value in pairs:
            if native in state:
                duplicated.append(native)
            state[native] = value
    _fail(found, family, "weights no rule maps", unmapped)
    _fail(found, family, "weights mapped twice", duplicated)
    if family.tied_head and family.embed_key not in state and family.head_key in state:
        state[family.embed_key] = state[family.head_key]
    _fail(found, family, "no token embedding", [] if family.embed_key in state else ["(none)"])
    return state


def build_backbone(
    model_class: type[PreTrainedModel],
    config: PretrainedConfig,
    state: dict[str, torch.Tensor],
    dtype: torch.dtype | None,
) -> tuple[PreTrainedModel, dict[str, list[str]]]:
    """The native model holding exactly ``state``, and the problems transformers reported."""
    model, info = model_class.from_pretrained(
        None,
        config=config,
        state_dict=state,
        dtype=dtype,
        attn_implementation="sdpa",
        output_loading_info=True,
    )
    problems = {
        key: sorted(str(k) for k in info.get(key) or ())
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    return model, problems


def load_family(
    family: Family,
    found: Probe,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> DiffusionLM:
    """Load ``found`` as a checkpoint of ``family``."""
    family.check(found)
    if not weight_files(found.directory):
        raise UnsupportedCheckpointError(
            f"{found.directory} looks like a {family.name} checkpoint but has no weight files "
            "(model.safetensors or pytorch_model.bin); the download is incomplete: download "
            "it again"
        )
    state = native_state(family, found, dtype)
    model_class, config = family.backbone(found, state)
    backbone, problems = build_backbone(model_class, config, state, dtype)
    for key, names in problems.items():
        _fail(found, family, key.replace("_", " "), names)
    vocab = backbone.get_input_embeddings().num_embeddings
    model = DiffusionLM(backbone, family.diffusion(found, vocab))
    model.generation_defaults = family.generation(found)
    model.source_format = family.name
    if device is not None:
        model.to(device)
    return model.eval()


def load_published(
    directory: str | os.PathLike,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> DiffusionLM:
    """Open a dlm checkpoint or a published one (Dream, LLaDA, DiffuGPT, DiffuLLaMA).

    The result is an ordinary ``DiffusionLM`` on a native ``transformers`` backbone
    (``Qwen2ForCausalLM``, ``LlamaForCausalLM`` or ``GPT2LMHeadModel``); for a published
    checkpoint ``model.generation_defaults`` holds the family's sampler defaults as
    ``dlm.sampling.generate`` keyword arguments and ``model.source_format`` its family name.
    """
    directory = Path(directory)
    if (directory / DLM_CONFIG_NAME).is_file():
        return DiffusionLM.from_pretrained(directory, dtype=dtype, device=device)
    found = probe(directory)
    return load_family(match_family(found), found, dtype, device)


def load_model(
    directory: str | os.PathLike,
    *,
    adapter: str | os.PathLike | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> DiffusionLM:
    """Open any model directory ``dlm`` reads: a dlm checkpoint, a published one, or an adapter.

    The one loader for a path a user gives (``dlm.load_model``): a directory with
    ``dlm_config.json`` opens through ``DiffusionLM.from_pretrained``; a Dream, LLaDA,
    DiffuGPT or DiffuLLaMA checkpoint is mapped onto its native architecture as
    ``load_published`` describes; a dlm adapter folder (what ``dlm train`` writes for a recipe
    with a ``peft:`` section) opens on the base it points at. ``adapter`` adds that adapter
    folder on top of ``directory`` instead. Anything else raises ``NotADlmCheckpointError`` (a
    ``DlmUserError``) saying what the directory lacks.
    """
    if adapter is not None:
        return load_adapted(adapter, base=directory, dtype=dtype, device=device)
    if is_adapter_dir(directory):
        return load_adapted(directory, dtype=dtype, device=device)
    return load_published(directory, dtype=dtype, device=device)


def is_adapter_dir(directory: str | os.PathLike) -> bool:
    """``directory`` holds a dlm adapter (``adapter_config.json``) and no model of its own."""
    directory = Path(directory)
    return (directory / ADAPTER_CONFIG).is_file() and not (directory / DLM_CONFIG_NAME).is_file()


def adapter_base(adapter: str | os.PathLike, base: str | os.PathLike | None = None) -> Path:
    """The base model folder of ``adapter``: ``base`` when given, else the one it points at."""
    config = read_adapter_config(adapter)
    where = base if base is not None else config.get("base")
    if where is None or not Path(where).expanduser().is_dir():
        raise AdapterError(
            f"the base model of adapter {adapter} ({where or 'not recorded'}) is not a folder "
            f"here; give it: --model BASE --adapter {adapter}"
        )
    return Path(where).expanduser()


def load_adapted(
    adapter: str | os.PathLike,
    *,
    base: str | os.PathLike | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> DiffusionLM:
    """The base model (``base``, or the folder the adapter points at) with the adapter added,
    its diffusion fields and sampler defaults those the adapter was trained with."""
    config = read_adapter_config(adapter)
    model = load_published(adapter_base(adapter, base), dtype=dtype, device=device)
    if config.get("model"):  # the adapted model's own fields (an adapter may change them)
        source = getattr(model, "source_format", None)
        model = DiffusionLM(model.backbone, DiffusionConfig.from_dict(config["model"]))
        if source is not None:
            model.source_format = source
    return load_adapter(model, adapter)


def load_model_and_tokenizer(
    path: str, adapter: str | None = None
) -> tuple[DiffusionLM, PreTrainedTokenizerBase]:
    """A dlm (or published: Dream, LLaDA, ...) checkpoint's model and its tokenizer, with
    ``adapter`` (a dlm adapter folder) added; ``path`` may itself be an adapter folder.

    The tokenizer is read without remote code (an adapter folder's own, else its base's); a
    published checkpoint's mask token is set from the model when its tokenizer does not name
    one.
    """
    from dlm.models import NotADlmCheckpointError

    from .convert import load_tokenizer
    from .detect import detect_format

    model = load_model(path, adapter=adapter)
    if adapter is None and is_adapter_dir(path):
        path, adapter = str(adapter_base(path)), path
    fmt = getattr(model, "source_format", None) or detect_format(path)
    tokenizer = None
    if adapter is not None:
        tokenizer = load_tokenizer(adapter, fmt, model.config.mask_token_id)
    tokenizer = tokenizer or load_tokenizer(path, fmt, model.config.mask_token_id)
    if tokenizer is None:
        raise NotADlmCheckpointError(
            f"{path} has no tokenizer saved beside the model; save the checkpoint with its "
            "tokenizer (model.save_pretrained(path, tokenizer))"
        )
    return model, tokenizer
