"""Published diffusion-LM checkpoints loaded without remote code.

``detect_format`` names what a directory holds: ``"dlm"`` (written by
``DiffusionLM.save_pretrained``) or a published family, ``"dream"`` (Dream / Dream-Coder 7B),
``"llada"`` (LLaDA 8B), ``"diffugpt"`` (DiffuGPT-S/M), ``"diffullama"`` (DiffuLLaMA), or the
block-diffusion ``"sdar"`` (SDAR, Qwen3) and ``"fast_dllm_v2"`` (Fast-dLLM v2, Qwen2).
``load_published`` maps a published checkpoint's config and weight names onto the native
``transformers`` architecture it is (Qwen2, Qwen3, LLaMA, GPT-2) and returns a ``DiffusionLM``;
``load_model`` (also ``dlm.load_model``) opens either kind of directory; ``DiffusionLM.from_pretrained``
opens dlm directories only.
``convert`` writes such a checkpoint back as a plain dlm checkpoint.

One module per family holds its detection rule and mapping tables: ``dream``, ``llada``,
``diffugpt``, ``diffullama``, ``sdar``, ``fast_dllm_v2``.
"""

from .base import Family, Probe, UnsupportedCheckpointError
from .convert import ConvertResult, convert, load_tokenizer
from .detect import DLM_FORMAT, FAMILIES, FORMATS, detect_format, probe
from .load import (
    adapter_base,
    is_adapter_dir,
    load_adapted,
    load_model,
    load_model_and_tokenizer,
    load_published,
)

__all__ = [
    "DLM_FORMAT",
    "FAMILIES",
    "FORMATS",
    "ConvertResult",
    "Family",
    "Probe",
    "UnsupportedCheckpointError",
    "adapter_base",
    "convert",
    "detect_format",
    "is_adapter_dir",
    "load_adapted",
    "load_model",
    "load_model_and_tokenizer",
    "load_published",
    "load_tokenizer",
    "probe",
]
