"""Data: token tensors with a clean prompt region and a noisable target region; file readers,
character tokenizers and offline corpora."""

from .batches import BatchOrder
from .char_tokenizer import build_char_tokenizer
from .corpora import CORPORA, corpus_documents, corpus_tokenizer, corpus_windows
from .files import DataError, read_jsonl, read_text_documents, write_jsonl
from .sequences import SequenceData, encode_pairs, encode_prompts, encode_slots, pack_documents

__all__ = [
    "CORPORA",
    "BatchOrder",
    "build_char_tokenizer",
    "corpus_documents",
    "corpus_tokenizer",
    "corpus_windows",
    "DataError",
    "SequenceData",
    "encode_pairs",
    "encode_slots",
    "encode_prompts",
    "pack_documents",
    "read_jsonl",
    "read_text_documents",
    "write_jsonl",
]
