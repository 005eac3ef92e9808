"""Data: token tensors with a clean prompt region and a noisable target region; file readers,
character tokenizers and offline corpora."""

from .batches import BatchOrder
from .char_tokenizer import build_char_tokenizer
from .corpora import CORPORA, corpus_documents, corpus_tokenizer, corpus_windows
from .files import DataError, read_jsonl, read_text_documents, write_jsonl
from .prompts import batch_prompts, decode_answers, left_pad_ids
from .sequences import SequenceData, encode_pairs, encode_prompts, encode_slots, pack_documents
from .truncation import content_lengths, random_truncation, truncate_batch

__all__ = [
    "CORPORA",
    "BatchOrder",
    "batch_prompts",
    "build_char_tokenizer",
    "content_lengths",
    "corpus_documents",
    "corpus_tokenizer",
    "corpus_windows",
    "DataError",
    "decode_answers",
    "left_pad_ids",
    "SequenceData",
    "encode_pairs",
    "encode_slots",
    "encode_prompts",
    "pack_documents",
    "random_truncation",
    "read_jsonl",
    "read_text_documents",
    "truncate_batch",
    "write_jsonl",
]
