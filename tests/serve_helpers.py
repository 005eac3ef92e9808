"""Serving tests' helpers: a tiny model that writes characters, and a live server on a free
loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import torch

from dlm.data.char_tokenizer import build_char_tokenizer
from helpers import tiny_model

CHARS = "0123456789abcdefghij"
#: jinja over the messages: the tokenizer's chat template for /v1/chat/completions
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"


def text_tokenizer(chat: bool = True):
    tokenizer = build_char_tokenizer(CHARS)
    if chat:
        tokenizer.chat_template = TEMPLATE
    return tokenizer


def text_model(
    arch: str = "llama", *, seed: int = 0, max_positions: int = 64, dtype=torch.float64, tokenizer=None
):
    """A random model whose head never prefers a special token (so its answers are text):
    the output embedding is untied and its rows for [PAD] [SEP] [MASK] [EOS] [UNK] are zero.
    float64: a row's logits alone and in a ragged batch differ by ~1e-16, never a near-tie."""
    tokenizer = tokenizer or text_tokenizer()
    model = tiny_model(arch, vocab=len(tokenizer), seed=seed, max_positions=max_positions)
    head = model.backbone.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone())
    model.backbone.config.tie_word_embeddings = False
    with torch.no_grad():
        head.weight[tokenizer.all_special_ids] = 0.0
        head.weight.mul_(8.0)
    return model.to(dtype)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """``app`` under uvicorn in a thread; yields its base URL and stops it at the end."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
