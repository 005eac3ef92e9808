"""``dlm serve``: an OpenAI-compatible server with step-level continuous batching, and a page.

    dlm serve --model DIR [--adapter DIR] [--host 127.0.0.1] [--port 8000] [--api-key KEY]
    # then: OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=KEY).completions.create(...)
    # and the page at http://127.0.0.1:8000/

Every flag is checked before the model loads. ``--api-key`` (or ``$DLM_API_KEY``) is required
on every endpoint but ``/health`` and the page's files; CORS is off unless ``--cors-origin``
names an origin. Access logs are JSON lines on stderr. On SIGINT/SIGTERM the server stops
taking connections, lets running requests finish for ``--shutdown-grace`` seconds, then
cancels what is left.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dlm.errors import DlmUserError

from .common import add_adapter_option, int_at_least, load_model_and_tokenizer
from .generate import recorded_task

__all__ = ["HELP", "add_arguments", "run"]

HELP = "serve a model: OpenAI-compatible API with continuous batching, and a page"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes a number; got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0; got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a dlm (or published) checkpoint directory")
    add_adapter_option(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int_at_least(0), default=8000, help="port (0: any free)")
    parser.add_argument("--name", help="the model id clients send and see (default: the folder's name)")
    parser.add_argument(
        "--api-key", default=os.environ.get("DLM_API_KEY"),
        help="bearer token every endpoint but /health checks (default: $DLM_API_KEY; none: open)",
    )
    parser.add_argument("--max-rows", type=int_at_least(1), default=32, help="rows in the running batch")
    parser.add_argument(
        "--max-queue", type=int_at_least(0), default=256,
        help="requests waiting beyond the batch before new ones get 429",
    )
    parser.add_argument(
        "--request-timeout", type=_positive_float, default=600.0,
        help="seconds a request may take from arrival, queue included (then 504)",
    )
    parser.add_argument(
        "--max-tokens", type=int_at_least(1), default=64,
        help="max_tokens of a request that gives none (and the checkpoint has no default)",
    )
    parser.add_argument(
        "--max-request-bytes", type=int_at_least(1), default=1 << 20, help="larger bodies get 413"
    )
    parser.add_argument(
        "--cors-origin", action="append", default=[], metavar="ORIGIN",
        help="allow cross-origin requests from ORIGIN (repeatable; off by default)",
    )
    parser.add_argument(
        "--shutdown-grace", type=_positive_float, default=30.0,
        help="seconds running requests get to finish at shutdown before they are cancelled",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    if args.port > 65535:
        raise DlmUserError(f"--port must be at most 65535; got {args.port}")
    for flag, path in (("--model", args.model), ("--adapter", args.adapter)):
        if path is not None and not Path(path).is_dir():
            raise DlmUserError(f"{flag} {path}: no such directory")
    try:
        import uvicorn

        from dlm.serve import ServeConfig, create_app
    except ImportError as err:
        raise DlmUserError(
            f"dlm serve needs the serving extras ({err.name} is missing): "
            "pip install -e '.[serve]'"
        ) from None

    logging.basicConfig(stream=sys.stderr, format="%(message)s")
    logging.getLogger("dlm.serve").setLevel(args.log_level.upper())
    model, tokenizer = load_model_and_tokenizer(args.model, args.adapter)
    config = ServeConfig(
        model_name=args.name or Path(args.adapter or args.model).resolve().name,
        max_rows=args.max_rows,
        max_queue=args.max_queue,
        request_timeout=args.request_timeout,
        api_key=args.api_key or None,
        cors_origins=tuple(args.cors_origin),
        max_request_bytes=args.max_request_bytes,
        default_max_tokens=args.max_tokens,
        shutdown_grace=args.shutdown_grace,
    )
    app = create_app(model, tokenizer, config, task=recorded_task(args.adapter or args.model))
    print(
        f"dlm serve: {config.model_name} on http://{args.host}:{args.port} "
        f"(page at /, OpenAI API at /v1{', API key required' if config.api_key else ''})",
        file=sys.stderr, flush=True,
    )
    uvicorn.run(
        app, host=args.host, port=args.port, access_log=False, log_level=args.log_level,
        timeout_graceful_shutdown=int(args.shutdown_grace) + 2,  # above the streams' grace
    )
    return 0
