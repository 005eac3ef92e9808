"""Data: token tensors with a clean prompt region and a noisable target region; file readers."""

from .batches import BatchOrder
from .files import DataError, read_jsonl, read_text_documents, write_jsonl
from .sequences import SequenceData, encode_pairs, encode_prompts, pack_documents

__all__ = [
    "BatchOrder",
    "DataError",
    "SequenceData",
    "encode_pairs",
    "encode_prompts",
    "pack_documents",
    "read_jsonl",
    "read_text_documents",
    "write_jsonl",
]
