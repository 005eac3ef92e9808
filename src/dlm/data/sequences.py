"""Token tensors for training: a clean prompt region and a noisable target region per row.

Two layouts:

* ``encode_pairs`` (SFT, tasks): ``prompt [SEP] target [EOS] [PAD]...`` up to ``seq_len``.
  The prompt and its separator stay clean; the target, its EOS and every pad after it are
  noisable, so the model learns where answers end (MGDM, Dream-Coder). The AR baseline's loss
  covers the target and its EOS only.
* ``pack_documents`` (pretraining): documents joined with EOS and cut into ``seq_len`` chunks;
  everything is noisable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .files import DataError

__all__ = ["SequenceData", "encode_pairs", "pack_documents", "encode_prompts"]


@dataclass
class SequenceData:
    """Rows of equal length; every tensor is (N, L)."""

    input_ids: torch.Tensor
    noisable: torch.Tensor  # bool: may be masked by the diffusion objective
    loss_mask: torch.Tensor  # bool: positions the AR objective predicts
    attention_mask: torch.Tensor | None = None  # None: every position is a real token
    #: (N,) long, on the host: each row's position in the data set it was selected from
    #: (None: the rows are the data set, in order); RL reads it to find each prompt's example
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def seq_len(self) -> int:
        return self.input_ids.shape[1]

    def select(self, index: torch.Tensor) -> SequenceData:
        rows = index.cpu()
        return SequenceData(
            self.input_ids[index],
            self.noisable[index],
            self.loss_mask[index],
            None if self.attention_mask is None else self.attention_mask[index],
            rows if self.index is None else self.index[rows],
        )

    def to(self, device: torch.device | str) -> SequenceData:
        """The same tensors on ``device``."""
        return SequenceData(
            self.input_ids.to(device),
            self.noisable.to(device),
            self.loss_mask.to(device),
            None if self.attention_mask is None else self.attention_mask.to(device),
            self.index,
        )


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def _require(tokenizer: PreTrainedTokenizerBase, name: str) -> int:
    value = getattr(tokenizer, f"{name}_token_id")
    if value is None:
        raise DataError(
            f"the tokenizer has no {name} token; set one (tokenizer.{name}_token = ...) before encoding"
        )
    return int(value)


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Prompt ids as the sampler sees them: the prompt text plus [SEP] when the tokenizer has one."""
    sep = tokenizer.sep_token_id
    return [_ids(tokenizer, p) + ([sep] if sep is not None else []) for p in prompts]


def encode_pairs(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    targets: Sequence[str],
    seq_len: int | None = None,
) -> SequenceData:
    """Encode (prompt, target) pairs as ``prompt [SEP] target [EOS] [PAD]...``."""
    if len(prompts) != len(targets):
        raise DataError(f"{len(prompts)} prompts but {len(targets)} targets")
    if not prompts:
        raise DataError("no examples to encode; the dataset is empty")
    eos, pad = _require(tokenizer, "eos"), _require(tokenizer, "pad")
    heads = encode_prompts(tokenizer, prompts)
    tails = [_ids(tokenizer, t) + [eos] for t in targets]
    longest = max(len(h) + len(t) for h, t in zip(heads, tails))
    if seq_len is None:
        seq_len = longest
    elif longest > seq_len:
        raise DataError(
            f"the longest example needs {longest} tokens but data.seq_len is {seq_len}; raise "
            "data.seq_len or shorten the examples"
        )
    n = len(heads)
    ids = torch.full((n, seq_len), pad, dtype=torch.long)
    noisable = torch.zeros(n, seq_len, dtype=torch.bool)
    loss_mask = torch.zeros(n, seq_len, dtype=torch.bool)
    for row, (head, tail) in enumerate(zip(heads, tails)):
        ids[row, : len(head)] = torch.tensor(head)
        ids[row, len(head) : len(head) + len(tail)] = torch.tensor(tail)
        noisable[row, len(head) :] = True
        loss_mask[row, len(head) : len(head) + len(tail)] = True
    return SequenceData(ids, noisable, loss_mask)


def encode_slots(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    targets: Sequence[str],
    slots: Sequence[Sequence[int]],
) -> SequenceData:
    """Encode ``prompt [SEP] target`` rows where only the target's ``slots`` are noisable.

    For infilling tasks whose answers sit inside a fixed template (the digits after each
    ``=`` of a page of sums): ``slots[i]`` lists token positions within target ``i``; the rest
    of the target stays clean, as it will be pinned (``fixed``) when sampling. Rows must have
    equal lengths (a template of one shape), so no padding or EOS is added.
    """
    if not (len(prompts) == len(targets) == len(slots)):
        raise DataError(f"{len(prompts)} prompts, {len(targets)} targets, {len(slots)} slot lists")
    if not prompts:
        raise DataError("no examples to encode; the dataset is empty")
    rows = [h + _ids(tokenizer, t) for h, t in zip(encode_prompts(tokenizer, prompts), targets)]
    heads = [len(r) - len(_ids(tokenizer, t)) for r, t in zip(rows, targets)]
    if len({len(r) for r in rows}) != 1 or len(set(heads)) != 1:
        raise DataError("slot examples must all have the same prompt and target lengths")
    ids = torch.tensor(rows, dtype=torch.long)
    noisable = torch.zeros_like(ids, dtype=torch.bool)
    for row, (head, positions) in enumerate(zip(heads, slots)):
        noisable[row, [head + p for p in positions]] = True
    return SequenceData(ids, noisable, noisable.clone())


def pack_documents(
    tokenizer: PreTrainedTokenizerBase, documents: Sequence[str], seq_len: int
) -> SequenceData:
    """Join documents with EOS and cut the stream into full ``seq_len`` chunks (remainder dropped)."""
    eos = _require(tokenizer, "eos")
    stream: list[int] = []
    for doc in documents:
        stream.extend(_ids(tokenizer, doc))
        stream.append(eos)
    n = len(stream) // seq_len
    if n == 0:
        raise DataError(
            f"the corpus has {len(stream)} tokens, fewer than one sequence of data.seq_len={seq_len}; "
            "add text or lower data.seq_len"
        )
    ids = torch.tensor(stream[: n * seq_len], dtype=torch.long).view(n, seq_len)
    everything = torch.ones_like(ids, dtype=torch.bool)
    return SequenceData(ids, everything, everything.clone())
