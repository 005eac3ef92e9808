"""``dlm generate``: sample from a checkpoint for one prompt or a JSONL file of prompts.

    dlm generate --model DIR --prompt TEXT [--max-new-tokens N] [sampler options]
    dlm generate --model DIR --input prompts.jsonl --output answers.jsonl [--chat] [--stream]
    dlm generate --model DIR --print-settings [sampler options]   # resolved settings, their sources

The sampler flags are generated from ``SamplerSettings``: a flag given wins over the
checkpoint's saved sampler defaults, which win over dlm's defaults. ``--output`` and every
flag are checked, and the prompts read, before the model loads; the results file is written
atomically (an existing file is replaced only by the complete new one).

A model trained on a task (its saved ``train_config.yaml`` names ``data.task``) has its answers
shown in the task's native form (``Task.render``): ``--prompt`` prints a Sudoku answer as a grid
with box separators, a Countdown answer as its equations one per line, a path as
``5 -> 6 -> 11``; an answer the task cannot read is printed as it was written. ``--raw`` prints
the flat string instead. Each JSONL result (``--output``, or printed for ``--input``) keeps the
flat string as ``output`` and, for such a model, adds the rendered text as ``rendered``
(``--raw`` leaves it out). A model with no task prints and writes ``output`` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from dlm.errors import DlmUserError

from .common import (
    add_adapter_option,
    add_sampler_options,
    check_output_path,
    check_sampler_flags,
    load_model_and_tokenizer,
    positive_int,
    refuse_unknown_tokens,
    resolve_sampler,
)

if TYPE_CHECKING:
    from dlm.models import DiffusionLM
    from dlm.sampling import SamplerSettings
    from dlm.tasks import Task

__all__ = [
    "HELP",
    "add_arguments",
    "apply_chat_template",
    "recorded_task",
    "render_region",
    "run",
    "run_generate",
]

HELP = "sample from a trained model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm checkpoint directory")
    add_adapter_option(parser)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--prompt", help="one prompt (text, encoded with the model's tokenizer)")
    src.add_argument(
        "--input",
        metavar="FILE.jsonl",
        help="prompts, one JSON object with a 'prompt' key per line",
    )
    parser.add_argument(
        "--output", metavar="FILE.jsonl", help="write results here instead of printing them"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="prompts per generate call"
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help="wrap each prompt (or a JSONL line's 'messages') in the tokenizer's chat template",
    )
    parser.add_argument(
        "--stream", action="store_true", help="show the canvas filling in, step by step"
    )
    parser.add_argument(
        "--allow-unk",
        action="store_true",
        help="sample even when a prompt holds text outside the model's vocabulary",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="print each answer as the flat string the model wrote (a task model's answers are "
        "otherwise shown in the task's form: a Sudoku grid, Countdown's equations one per line)",
    )
    parser.add_argument(
        "--print-settings",
        action="store_true",
        help="print the resolved sampler settings and where each value came from, then exit",
    )
    add_sampler_options(parser)


def _prompts(args: argparse.Namespace) -> list[dict]:
    from dlm.data import DataError, read_jsonl

    if args.prompt is not None:
        return [{"prompt": args.prompt}]
    records = read_jsonl(args.input)
    missing = [i for i, r in enumerate(records, 1) if "prompt" not in r and "messages" not in r]
    if missing:
        raise DataError(
            f"{args.input}: lines {missing[:5]} have no 'prompt' key; each line needs {{\"prompt\": ...}}"
        )
    return records


def apply_chat_template(tokenizer, records: list[dict]) -> list[dict]:
    """Each record's prompt (a user message) or ``messages`` list through the chat template."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise DlmUserError(
            "--chat needs a tokenizer with a chat template (an instruct model's); this "
            "checkpoint's tokenizer has none: drop --chat or set tokenizer.chat_template"
        )
    out = []
    for record in records:
        messages = record.get("messages") or [{"role": "user", "content": str(record["prompt"])}]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        out.append({**record, "prompt": text})
    return out


def recorded_task(model_dir: str) -> Task | None:
    """``dlm.training.recorded_task``; an unbuildable task is reported on stderr and read as
    none, so generation itself still runs."""
    from dlm.training import recorded_task as recorded

    try:
        return recorded(model_dir)
    except DlmUserError as err:
        print(f"answers are shown raw: the model's task cannot be rebuilt ({err})", file=sys.stderr)
        return None


def _result(record: dict, text: str, task: Task | None) -> dict:
    """A prompt's record with its answer as ``output`` and, given a task, ``rendered``."""
    result = {**record, "output": text}
    if task is not None:
        result["rendered"] = task.render(str(record["prompt"]), text)
    return result


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dlm.data import DataError, write_jsonl
    from dlm.evaluation import batch_prompts, decode_answers
    from dlm.sampling import generate

    if args.prompt is None and args.input is None and not args.print_settings:
        raise DlmUserError("give the prompts: --prompt TEXT or --input FILE.jsonl")
    if args.stream and args.output:
        raise DlmUserError(
            "--stream prints the canvas step by step and writes no --output file; drop one of them"
        )
    check_sampler_flags(args)
    if args.output:
        check_output_path(args.output, "--output")
    records = [] if args.print_settings else _prompts(args)
    if not args.chat and any("prompt" not in r for r in records):
        raise DataError(f"{args.input}: lines with 'messages' and no 'prompt' need --chat")
    model, tokenizer = load_model_and_tokenizer(args.model, args.adapter)
    resolved = resolve_sampler(args, model)
    if args.print_settings:
        print(resolved.describe())
        return 0
    if args.chat:
        records = apply_chat_template(tokenizer, records)
    if not args.allow_unk:
        where = (
            ["--prompt"]
            if args.prompt is not None
            else [f"{args.input} record {i}" for i in range(1, len(records) + 1)]
        )
        refuse_unknown_tokens(tokenizer, [str(r["prompt"]) for r in records], where)
    settings = resolved.settings
    if args.stream:
        return _stream(model, tokenizer, records, settings)
    task = None if args.raw else recorded_task(args.adapter or args.model)
    results = []
    # a bar over the prompts on a terminal (tqdm's disable=None: silent in a pipe or a log)
    bar = tqdm(total=len(records), desc="generate", unit="prompt", disable=None, dynamic_ncols=True)
    for start in range(0, len(records), args.batch_size):
        chunk = records[start : start + args.batch_size]
        input_ids, mask = batch_prompts(tokenizer, [str(r["prompt"]) for r in chunk])
        out = generate(model, input_ids, mask, settings=settings)
        for record, text in zip(chunk, decode_answers(tokenizer, out.generated), strict=True):
            results.append(_result(record, text, task))
        bar.update(len(chunk))
        tqdm.write(
            f"batch of {len(chunk)}: {out.nfe} forward passes, {out.wall_time:.2f}s, "
            f"{out.tokens_per_second:.0f} generated tokens/s",
            file=sys.stderr,
        )
    bar.close()
    if args.output:
        write_jsonl(args.output, results)
    else:
        for r in results:
            shown = r.get("rendered", r["output"])
            print(shown if args.prompt is not None else json.dumps(r, ensure_ascii=False))
    return 0


def render_region(
    tokenizer, region: list[int], mask_token_id: int, pad_token_id: int | None
) -> str:
    """Text of a partly generated region, each mask shown as '·' (padding dropped)."""
    pieces, run = [], []
    for token in region:
        if token == mask_token_id:
            if run:
                pieces.append(tokenizer.decode(run, skip_special_tokens=True))
                run = []
            pieces.append("·")
        elif token != pad_token_id:
            run.append(token)
    if run:
        pieces.append(tokenizer.decode(run, skip_special_tokens=True))
    return "".join(pieces)


def _stream(model: DiffusionLM, tokenizer, records: list[dict], settings: SamplerSettings) -> int:
    """Print every row's canvas after every step (the terminal view of ``dlm.sampling.stream``)."""
    from dlm.evaluation import batch_prompts
    from dlm.sampling import stream

    cfg = model.config
    input_ids, mask = batch_prompts(tokenizer, [str(r["prompt"]) for r in records])
    last = None
    for event in stream(model, input_ids, mask, settings=settings):
        for row in range(event.region.shape[0]):
            text = render_region(
                tokenizer, event.region[row].tolist(), cfg.mask_token_id, cfg.pad_token_id
            )
            prefix = f"step {event.step:>3}" + (f" row {row}" if len(records) > 1 else "")
            print(f"{prefix} +{int(event.committed[row].sum()):<3} {text}", flush=True)
        last = event
    if last is not None:
        print(f"{last.step + 1} steps, {last.nfe} forward passes", file=sys.stderr)
    return 0


run_generate = run  # the name earlier code imports
