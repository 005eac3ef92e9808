"""README.md read as a script, and the stand-ins its commands need on a machine with no network.

``readme_commands(text)`` lists every shell command the README shows: each line of a ```bash
block (``\\`` continuations joined, ``a && b`` and ``a; b`` split, ``# comments`` dropped, blank
lines skipped) and each inline code span that runs a program other than ``dlm`` with at least one
argument (``huggingface-cli download ...``; an inline ``dlm ...`` span is a flag or a syntax
sketch such as ``dlm eval --model DIR``, not a command). ``python_blocks(text)`` lists the
```python blocks. Commands are normalised: whitespace outside quotes becomes one space.

The stand-ins: ``write_fake_dream`` and ``write_fake_llada`` write tiny checkpoints in Dream's
and LLaDA's published layouts (the writers of ``tests/checkpoints/conftest.py``) with a tokenizer
each, so ``dlm convert ~/models/...`` has something of the right format to read;
``write_sudoku_prompts``, ``write_notes`` and ``write_arc_like_task`` write the data files the
README's commands name.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

from transformers import Qwen2Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from checkpoints.conftest import write_dream, write_llada
from dlm.data.char_tokenizer import EOS_ID, MASK_ID, PAD_ID, build_char_tokenizer

__all__ = [
    "INLINE_PROGRAMS",
    "ReadmeCommand",
    "python_blocks",
    "readme_commands",
    "split_commands",
    "write_arc_like_task",
    "write_fake_dream",
    "write_fake_llada",
    "write_notes",
    "write_sudoku_prompts",
]

#: Programs whose inline code spans (`prog arg ...`) are commands too, not only flag mentions.
INLINE_PROGRAMS = ("huggingface-cli", "dlm-lm-eval", "pip", "python", "accelerate", "torchrun")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class ReadmeCommand:
    text: str  # the command, normalised
    offset: int  # where its block or span starts in README.md
    inline: bool  # from an inline code span rather than a ```bash block


def split_commands(block: str) -> list[str]:
    """The commands of one shell block: continuations joined, ``&&`` and ``;`` split, comments
    and blank lines dropped, whitespace outside quotes collapsed to one space."""
    joined = re.sub(r"\\\n[ \t]*", " ", block)
    commands: list[str] = []
    for line in joined.splitlines():
        current, quote, i = "", "", 0
        while i < len(line):
            ch = line[i]
            if quote:
                current += ch
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote, current = ch, current + ch
            elif ch == "#" and (not current or current[-1] == " "):
                break  # a comment runs to the end of the line
            elif line.startswith("&&", i) or ch == ";":
                commands.append(current)
                current = ""
                i += 1 if ch == ";" else 2
                continue
            elif ch.isspace():
                current += "" if current.endswith(" ") else " "
            else:
                current += ch
            i += 1
        commands.append(current)
    return [c.strip() for c in commands if c.strip()]


def _blank_fences(text: str) -> str:
    """``text`` with every fenced block replaced by spaces (offsets kept)."""
    return _FENCE.sub(lambda m: " " * len(m.group(0)), text)


def readme_commands(text: str) -> list[ReadmeCommand]:
    """Every shell command of the README in document order (repeats included)."""
    found = [
        ReadmeCommand(command, match.start(), False)
        for match in _FENCE.finditer(text)
        if match.group(1) == "bash"
        for command in split_commands(match.group(2))
    ]
    for match in _INLINE.finditer(_blank_fences(text)):
        words = match.group(1).split()
        if len(words) > 1 and words[0] in INLINE_PROGRAMS:
            found.append(ReadmeCommand(" ".join(words), match.start(), True))
    return sorted(found, key=lambda c: c.offset)


def python_blocks(text: str) -> list[str]:
    """The code of every ```python block, in order."""
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1) == "python"]


# ---------------------------------------------------------------- stand-in checkpoints
_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: The LLaDA stand-in's characters: English prose and lm-eval's "Question: ...\nAnswer:" form.
LLADA_ALPHABET = string.ascii_letters + string.digits + " \n?.,!:;-'"


def write_fake_dream(directory: Path, max_positions: int = 256) -> int:
    """A tiny Dream-v0-Instruct-format folder: Dream's ``config.json`` and Qwen2 weights
    (hidden 32, 2 layers, ``max_positions``) and a byte-level Qwen2 tokenizer with every byte,
    ChatML's two markers, ``<|mask|>`` and a chat template; returns its vocabulary size (260)."""
    vocab = {"<|endoftext|>": 0}
    for char in bytes_to_unicode().values():
        vocab[char] = len(vocab)
    specials = ["<|im_start|>", "<|im_end|>", "<|mask|>"]
    for token in specials:
        vocab[token] = len(vocab)
    write_dream(
        directory,
        vocab=len(vocab),
        mask_token_id=vocab["<|mask|>"],
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        max_position_embeddings=max_positions,
    )
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], additional_special_tokens=specials)
    tokenizer.chat_template = _CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)
    return len(vocab)


def write_fake_llada(directory: Path) -> int:
    """A tiny LLaDA-8B-Instruct-format folder: LLaDA's ``config.json`` and two weight shards
    under LLaDA's names (d_model 32, 2 layers, 128 positions) and a character tokenizer over
    ``LLADA_ALPHABET`` whose [MASK] is the config's mask id; returns its vocabulary size (77)."""
    tokenizer = build_char_tokenizer(LLADA_ALPHABET)
    size = len(tokenizer)
    write_llada(
        directory,
        embedding_size=size,
        vocab_size=size,
        mask_token_id=MASK_ID,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
        max_sequence_length=128,
    )
    tokenizer.save_pretrained(directory)
    return size


# ---------------------------------------------------------------- data files
def write_sudoku_prompts(path: Path) -> list[str]:
    """``prompts.jsonl`` for ``dlm generate --input``: two 6x6 puzzles of the demo's
    distribution (``SudokuTask(2, 3)``, seed 1), one ``{"prompt": ...}`` per line; returns them."""
    from dlm.tasks import SudokuTask

    task = SudokuTask(box_rows=2, box_cols=3, min_givens=18, max_givens=24)
    prompts = [example.prompt for example in task.generate(2, seed=1)]
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return prompts


def write_notes(path: Path) -> None:
    """``notes.txt`` for ``dlm eval ppl``: two lines of prose in the LLaDA stand-in's alphabet."""
    path.write_text(
        "Diffusion models write text by unmasking it, a few tokens per step.\n"
        "These notes are scored by the Monte Carlo bound, not by the chain rule.\n"
    )


def write_arc_like_task(folder: Path, name: str) -> None:
    """A local lm-eval task ``name`` in ``folder``: multiple choice in arc_easy's own document
    layout (``question``, ``choices.text``/``choices.label``, ``answerKey``) and prompt
    (``Question: ...\\nAnswer:``), on two questions in a JSONL file beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = [
        {
            "id": "q1",
            "question": "Which gas do green plants take in from the air?",
            "choices": {"text": ["carbon dioxide", "helium"], "label": ["A", "B"]},
            "answerKey": "A",
        },
        {
            "id": "q2",
            "question": "What turns ice into water?",
            "choices": {"text": ["cold", "heat", "darkness"], "label": ["A", "B", "C"]},
            "answerKey": "B",
        },
    ]
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
        f"  cache_dir: {folder / 'hf_cache'}\ntest_split: test\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_choice: "{{choices.text}}"\n'
        'doc_to_target: "{{choices.label.index(answerKey)}}"\n'
        "metric_list:\n  - metric: acc\n"
    )
