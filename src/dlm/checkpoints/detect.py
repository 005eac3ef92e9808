"""Which checkpoint format a directory holds, decided from its files without loading tensors.

``detect_format`` returns ``"dlm"`` for a directory with ``dlm_config.json``, otherwise the
first published family (:data:`FAMILIES`) whose test accepts the directory's ``config.json``
fields (``model_type``, ``architectures``, ``auto_map``), weight names and tokenizer mask
token. A directory matching none raises ``NotADlmCheckpointError`` naming what was found
and every supported format.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlm.errors import DlmUserError
from dlm.models.diffusion_lm import DLM_CONFIG_NAME, NotADlmCheckpointError

from .base import Family, Probe, read_json, tokenizer_mask_id
from .diffugpt import DIFFUGPT
from .diffullama import DIFFULLAMA
from .dream import DREAM
from .fast_dllm_v2 import FAST_DLLM_V2
from .llada import LLADA
from .sdar import SDAR
from .weights import weight_names

__all__ = [
    "DLM_FORMAT",
    "FAMILIES",
    "FORMATS",
    "detect_format",
    "family",
    "match_family",
    "probe",
    "unknown_format_error",
]

DLM_FORMAT = "dlm"

#: The published families, in the order they are tried.
FAMILIES: tuple[Family, ...] = (DREAM, LLADA, DIFFUGPT, DIFFULLAMA, SDAR, FAST_DLLM_V2)

#: Every format name ``detect_format`` can return.
FORMATS: tuple[str, ...] = (DLM_FORMAT, *(f.name for f in FAMILIES))

_SHOWN_FIELDS = ("model_type", "architectures", "auto_map", "mask_token_id", "vocab_size")


def probe(directory: str | os.PathLike) -> Probe:
    """The config files, weight names and tokenizer mask id of ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADlmCheckpointError(
            f"{directory} is not a directory; pass the folder a checkpoint was saved to"
        )
    return Probe(
        directory=directory,
        config=read_json(directory / "config.json"),
        generation=read_json(directory / "generation_config.json"),
        weight_names=weight_names(directory),
        files=tuple(sorted(p.name for p in directory.iterdir())),
        tokenizer_mask_id=tokenizer_mask_id(directory),
    )


def family(name: str) -> Family:
    """The published family called ``name``."""
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise DlmUserError(f"unknown checkpoint family {name!r}; choose one of: {', '.join(FORMATS)}")


def _describe(found: Probe) -> str:
    fields = {k: found.config[k] for k in _SHOWN_FIELDS if k in found.config}
    names = list(found.weight_names[:6])
    more = len(found.weight_names) - len(names)
    if "config.json" not in found.files:
        config = "absent"
    else:
        config = f"{fields}" if fields else "present, but without model_type or architectures"
    return f"config.json: {config}; weights: " + (
        ", ".join(names) + (f" (+{more} more)" if more else "") if names else "none found"
    )


def unknown_format_error(found: Probe) -> NotADlmCheckpointError:
    """The error for a directory that is neither a dlm checkpoint nor a published format."""
    files = ", ".join(found.files[:12]) or "nothing"
    supported = "; ".join(
        [f"{DLM_FORMAT} (a directory with {DLM_CONFIG_NAME})", *(f.summary for f in FAMILIES)]
    )
    return NotADlmCheckpointError(
        f"{found.directory} is not a dlm checkpoint: it has no {DLM_CONFIG_NAME} (found: {files}) "
        f"and matches no published format this library reads. Found {_describe(found)}. "
        f"Supported formats: {supported}. Give a directory written by `dlm train`, "
        "`dlm demo --out` or DiffusionLM.save_pretrained, or at a download of one of these models"
    )


def detect_format(directory: str | os.PathLike) -> str:
    """``"dlm"`` or the name of the published family ``directory`` holds (see :data:`FORMATS`)."""
    directory = Path(directory)
    if (directory / DLM_CONFIG_NAME).is_file():
        return DLM_FORMAT
    return match_family(probe(directory)).name


def match_family(found: Probe) -> Family:
    """The first published family that accepts ``found``; the unknown-format error otherwise."""
    for candidate in FAMILIES:
        if candidate.matches(found):
            return candidate
    raise unknown_format_error(found)
