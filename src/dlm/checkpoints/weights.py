"""Reading a checkpoint's weights: names without loading (for detection), tensors one by one.

Safetensors files are preferred (single file or sharded with ``model.safetensors.index.json``);
``pytorch_model.bin`` files are read with ``torch.load(weights_only=True)`` when no
safetensors exist (older DiffuGPT / DiffuLLaMA uploads). A shard an index lists that is not
there, or a safetensors file cut short (an interrupted download), is a
``NotADlmCheckpointError`` naming the file, raised before any tensor is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import safe_open

from dlm.models.diffusion_lm import NotADlmCheckpointError, check_safetensors

from .base import read_json

__all__ = ["iter_tensors", "weight_files", "weight_names"]


def _indexed(directory: Path, index_name: str) -> list[Path]:
    weight_map = read_json(directory / index_name).get("weight_map") or {}
    files = [directory / name for name in sorted(set(map(str, weight_map.values())))]
    for path in files:
        if not path.is_file():
            raise NotADlmCheckpointError(
                f"{directory} lacks the weight shard {path.name} that {index_name} lists; the "
                "checkpoint is incomplete: download or copy it again"
            )
    return files


def weight_files(directory: Path) -> list[Path]:
    """The weight files of ``directory``: safetensors if any, else PyTorch pickles."""
    for index_name, pattern in (
        ("model.safetensors.index.json", "*.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model*.bin"),
    ):
        if (directory / index_name).is_file():
            return _indexed(directory, index_name)
        found = sorted(directory.glob(pattern))
        if found:
            return found
    return []


def weight_names(directory: Path) -> tuple[str, ...]:
    """Every tensor name stored in ``directory``, read from headers and indexes only."""
    names: list[str] = []
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        weight_map = read_json(directory / index_name).get("weight_map")
        if weight_map:
            return tuple(sorted(weight_map))
    for path in weight_files(directory):
        if path.suffix == ".safetensors":
            check_safetensors(path)
            with safe_open(str(path), framework="pt") as handle:
                names.extend(handle.keys())
        else:
            names.extend(torch.load(path, map_location="cpu", weights_only=True, mmap=True))
    return tuple(sorted(names))


def iter_tensors(
    directory: Path, dtype: torch.dtype | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, tensor)`` for every stored tensor, cast to ``dtype`` as it is read."""
    files = weight_files(directory)
    for path in files:  # every file checked before the first tensor is read
        if path.suffix == ".safetensors":
            check_safetensors(path)
    for path in files:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as handle:
                for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                    yield name, _cast(handle.get_tensor(name), dtype)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            for name, tensor in state.items():
                yield name, _cast(tensor, dtype)


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is None or not tensor.is_floating_point():
        return tensor
    return tensor.to(dtype)
