"""The FastAPI app of ``dlm serve``: OpenAI endpoints over one ``Scheduler``, and the page.

Endpoints: ``/v1/completions``, ``/v1/chat/completions``, ``/v1/models``, ``/health``,
``/metrics`` (Prometheus text), ``/v1/dlm/render`` (a task model's answer in the task's form)
and the page (``/``, ``/static/...``). Every endpoint but ``/health`` and the page's static
files checks the bearer token when the server has an API key (the page asks for the key and
sends it on its API calls).

A request is one row per prompt and choice (``n``), each with its own seed (``seed + index``
when given). ``stream=true`` sends OpenAI chunks as server-sent events (``sse-starlette``):
text appears left to right as it becomes final (``FinalText``), so a stock client works, and
``dlm_events=true`` adds a ``dlm.step`` event per step with the positions and tokens committed
(plus ``dlm.start`` and ``dlm.done``), which the page draws. Errors are OpenAI's error object;
an error a request can cause is a 400 that names the field before any work is queued, or, if
it only shows at the run's first step (``steps`` fewer than the blocks), a 400 before the
first byte of the response. A full queue is a 429 with ``Retry-After``; a request past its
timeout is a 504 (or an error event mid-stream); a client that disconnects has its rows
cancelled and they leave the batch at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dlm.data import encode_prompts
from dlm.errors import DlmUserError

from .metrics import ServerMetrics
from .middleware import AccessLog, BodyLimit
from .protocol import ChatRequest, CompletionRequest, RequestError, request_settings
from .scheduler import QueueFull, Scheduler, ShuttingDown
from .text import FinalText

if TYPE_CHECKING:
    from dlm.models import DiffusionLM
    from dlm.sampling import SamplerSettings
    from dlm.tasks import Task

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger("dlm.serve")


@dataclass(frozen=True)
class ServeConfig:
    """How the server runs (the ``dlm serve`` flags)."""

    model_name: str = "dlm"
    max_rows: int = 32  # rows in the running batch
    max_queue: int = 256  # requests waiting beyond it before a 429
    request_timeout: float = 600.0  # seconds from arrival, queue included
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_request_bytes: int = 1 << 20
    default_max_tokens: int = 64
    shutdown_grace: float = 30.0


def _error(status: int, message: str, param: str | None = None, kind: str | None = None) -> JSONResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


class _Choice:
    """One row of a request as the response sees it."""

    def __init__(self, index: int, tracker: FinalText, prompt_tokens: int) -> None:
        self.index, self.tracker, self.prompt_tokens = index, tracker, prompt_tokens
        self.row = None
        self.ended = False
        self.error: tuple[int, str] | None = None  # (status, message)
        self.nfe = self.steps = 0
        self.wall_time = 0.0
        self.region: list[int] | None = None  # the final generation region's ids
        self.first_event: float | None = None


def create_app(
    model: DiffusionLM, tokenizer, config: ServeConfig | None = None, *, task: Task | None = None
) -> FastAPI:
    """The server app; its ``Scheduler`` starts with the app and stops at its shutdown."""
    config = config or ServeConfig()
    metrics = ServerMetrics()
    scheduler = Scheduler(
        model, max_rows=config.max_rows, max_queue=config.max_queue, on_step=metrics.on_step
    )
    metrics.bind(scheduler)
    mask_id = model.config.mask_token_id
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(scheduler.shutdown, config.shutdown_grace)

    app = FastAPI(title="dlm serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.scheduler, app.state.metrics, app.state.config = scheduler, metrics, config
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes)
    app.add_middleware(AccessLog)

    bearer = HTTPBearer(auto_error=False)

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if config.api_key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), config.api_key.encode()):
            raise StarletteHTTPException(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")

    guarded = [Depends(authorized)]

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, err: RequestError) -> JSONResponse:
        return _error(err.status, str(err), err.param)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        return _error(400, f"{param or 'body'}: {first.get('msg', 'invalid')}", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kind = "authentication_error" if err.status_code == 401 else None
        return _error(err.status_code, str(err.detail), kind=kind)

    # ------------------------------------------------------------------ plain endpoints
    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "active_rows": scheduler.active_rows, "queue_depth": scheduler.queue_depth}

    @app.get("/metrics", dependencies=guarded)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models", dependencies=guarded)
    async def models() -> dict[str, Any]:
        info = {
            "max_positions": model.max_positions,
            "mask_token": tokenizer.convert_ids_to_tokens(mask_id),
            "chat_template": getattr(tokenizer, "chat_template", None) is not None,
            "generation_defaults": model.generation_defaults,
            "task": None if task is None else {"name": task.name, "options": _task_options(task)},
            "max_rows": config.max_rows,
        }
        card = {"id": config.model_name, "object": "model", "created": created, "owned_by": "dlm", "dlm": info}
        return {"object": "list", "data": [card]}

    @app.post("/v1/dlm/render", dependencies=guarded)
    async def render(body: dict[str, Any]) -> dict[str, Any]:
        prompt, text = str(body.get("prompt", "")), str(body.get("text", ""))
        if task is None:
            return {"rendered": text}
        return {"rendered": task.render(prompt, text)}

    page = resources.files("dlm.serve") / "page"

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(page / "index.html"))

    app.mount("/static", StaticFiles(directory=str(page)), name="static")

    # ------------------------------------------------------------------ generation
    def encode(prompt: Any) -> list[list[int]]:
        """Each prompt's ids (text is encoded as the sampler's prompts are: [SEP] appended)."""
        if isinstance(prompt, str):
            prompts: list = [prompt]
        elif prompt and isinstance(prompt[0], int):
            prompts = [prompt]
        else:
            prompts = list(prompt)
        if not prompts:
            raise RequestError("prompt is empty", "prompt")
        rows = []
        for p in prompts:
            ids = encode_prompts(tokenizer, [p])[0] if isinstance(p, str) else list(p)
            bad = [i for i in ids if not 0 <= i < model.vocab_size]
            if bad:
                raise RequestError(f"prompt holds id {bad[0]}, outside [0, {model.vocab_size})", "prompt")
            unk = tokenizer.unk_token_id
            if isinstance(p, str) and unk is not None and unk in ids:
                raise RequestError(
                    "prompt holds text outside the model's vocabulary (read as its unknown token); "
                    "send only characters the model was trained on", "prompt",
                )
            rows.append(ids)
        return rows

    def check_length(ids: list[int], settings: SamplerSettings) -> None:
        total, limit = len(ids) + settings.max_new_tokens, model.max_positions
        if limit is not None and total > limit:
            raise RequestError(
                f"prompt ({len(ids)} tokens) + max_tokens ({settings.max_new_tokens}) = {total} "
                f"exceeds the model's {limit} positions; shorten the prompt or lower max_tokens",
                "max_tokens",
            )

    async def run(request: Request, endpoint: str, body, prompts: list[list[int]], settings,
                  *, suffix: list[int] | None, echo: list[str] | None) -> Any:
        arrival = time.monotonic()
        stops = body.stops()
        for ids in prompts:
            check_length(ids, settings)
        width = settings.max_new_tokens
        if suffix is not None and len(suffix) >= width:
            raise RequestError(
                f"suffix ({len(suffix)} tokens) leaves nothing to generate in max_tokens ({width}); "
                "raise max_tokens", "suffix",
            )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        choices: list[_Choice] = []
        eos = model.config.eos_token_id if settings.stop_at_eos else None
        free = None if suffix is None else width - len(suffix)
        fixed = None if suffix is None else [-1] * free + suffix
        try:
            for p_index, ids in enumerate(prompts):
                for k in range(body.n):
                    index = p_index * body.n + k
                    seed = settings.seed + index if settings.seed is not None else secrets.randbits(31)
                    tracker = FinalText(tokenizer, mask_id, eos, stops, free)
                    choice = _Choice(index, tracker, len(ids))
                    choices.append(choice)

                    def sink(kind: str, value: Any, index: int = index) -> None:
                        loop.call_soon_threadsafe(queue.put_nowait, (index, kind, value))

                    choice.row = scheduler.submit(
                        ids, settings.replace(seed=seed), sink, timeout=config.request_timeout,
                        fixed=fixed,
                    )
        except (QueueFull, ShuttingDown) as err:
            for choice in choices:
                if choice.row is not None:
                    choice.row.cancel("rejected")
            metrics.requests_total.labels(endpoint, "rejected").inc()
            if isinstance(err, QueueFull):
                response = _error(429, str(err), kind="rate_limit_error")
                response.headers["Retry-After"] = str(err.retry_after)
                return response
            return _error(503, str(err))
        state = _Exchange(endpoint, body, choices, queue, arrival, echo, metrics)
        # the first item of every row: a request error of the run's first step is still a 400
        try:
            await state.prime(request)
        except RequestError:
            state.cancel()
            raise
        if state.disconnected:
            return Response(status_code=499)
        if body.stream:
            # at shutdown a running stream gets the grace period to finish (sse-starlette
            # would otherwise end it at once)
            return EventSourceResponse(
                state.sse(request, model_name=config.model_name), ping=15,
                shutdown_grace_period=config.shutdown_grace,
            )
        return await state.complete(request, model_name=config.model_name)

    @app.post("/v1/completions", dependencies=guarded)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        settings = request_settings(
            body, checkpoint=model.generation_defaults, default_max_tokens=config.default_max_tokens
        )
        prompts = encode(body.prompt)
        suffix = None
        if body.suffix:
            suffix = tokenizer(body.suffix, add_special_tokens=False)["input_ids"]
        echo = None
        if body.echo:
            texts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
            echo = [t if isinstance(t, str) else tokenizer.decode(t) for t in texts]
            if texts and isinstance(texts[0], int):
                echo = [tokenizer.decode(texts)]
        return await run(request, "completions", body, prompts, settings, suffix=suffix, echo=echo)

    @app.post("/v1/chat/completions", dependencies=guarded)
    async def chat(body: ChatRequest, request: Request) -> Any:
        if getattr(tokenizer, "chat_template", None) is None:
            raise RequestError(
                "this model's tokenizer has no chat template, so /v1/chat/completions cannot "
                "format messages; use /v1/completions with a plain prompt", "messages",
            )
        settings = request_settings(
            body, checkpoint=model.generation_defaults, default_max_tokens=config.default_max_tokens
        )
        text = tokenizer.apply_chat_template(
            body.messages_as_dicts(), add_generation_prompt=True, tokenize=False
        )
        prompts = encode(text)
        return await run(request, "chat", body, prompts, settings, suffix=None, echo=None)

    return app


def _task_options(task: Task) -> dict[str, Any]:
    """The public options of a task object (its constructor's arguments, where readable)."""
    return {k: v for k, v in vars(task).items() if not k.startswith("_") and isinstance(v, int | float | str | bool)}


class _Exchange:
    """One request's rows on their way to the client (a response or an event stream)."""

    def __init__(self, endpoint, body, choices, queue, arrival, echo, metrics) -> None:
        self.endpoint, self.body, self.choices, self.queue = endpoint, body, choices, queue
        self.arrival, self.echo, self.metrics = arrival, echo, metrics
        self.chat = endpoint == "chat"
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.buffer: list[tuple[int, str, Any]] = []
        self.disconnected = False

    def cancel(self, reason: str = "cancelled") -> None:
        for choice in self.choices:
            if choice.row is not None and not choice.ended:
                choice.row.cancel(reason)

    async def _next(self, request: Request) -> tuple[int, str, Any] | None:
        """The next row item; None when the client went away (the rows are cancelled)."""
        while True:
            try:
                return await asyncio.wait_for(self.queue.get(), timeout=0.5)
            except TimeoutError:
                if await request.is_disconnected():
                    self.disconnected = True
                    self.cancel()
                    self.metrics.requests_total.labels(self.endpoint, "disconnected").inc()
                    return None

    async def prime(self, request: Request) -> None:
        """Wait for every row's first item; raise a ``RequestError`` if a row refused its
        settings at its first step."""
        seen: set[int] = set()
        while len(seen) < len(self.choices):
            item = await self._next(request)
            if item is None:
                return
            self.buffer.append(item)
            index, kind, value = item
            seen.add(index)
            if kind == "error" and isinstance(value, DlmUserError):
                self.metrics.requests_total.labels(self.endpoint, "invalid").inc()
                raise RequestError(str(value))

    async def items(self, request: Request) -> AsyncIterator[tuple[int, str, Any]]:
        while self.buffer:
            yield self.buffer.pop(0)
        while not all(c.ended for c in self.choices):
            item = await self._next(request)
            if item is None:
                return
            yield item

    def consume(self, index: int, kind: str, value: Any) -> str:
        """Apply one row item; returns the text that became final."""
        choice = self.choices[index]
        now = time.monotonic()
        if kind == "step":
            if choice.first_event is None:
                choice.first_event = now
                self.metrics.first_event.labels(self.endpoint).observe(now - self.arrival)
            choice.nfe, choice.steps = value.nfe, value.step + 1
            choice.region = value.region[0].tolist()
            delta = choice.tracker.update(value.region[0].tolist())
            if choice.tracker.finish_reason == "stop" and choice.row is not None:
                choice.row.cancel("stopped")  # a stop string or EOS is final: the row can leave
            return delta
        choice.ended = True
        if kind == "done":
            choice.nfe, choice.steps, choice.wall_time = value.nfe, value.steps, value.wall_time
            choice.region = value.region
            return choice.tracker.update(value.region)
        if kind == "cancelled":
            if value == "stopped":
                return ""
            status = {"timeout": 504, "shutdown": 503}.get(value, 499)
            message = {
                "timeout": "the request ran past the server's request timeout",
                "shutdown": "the server shut down before the request finished",
            }.get(value, f"the request was {value}")
            choice.error = (status, message)
            return ""
        choice.error = (400 if isinstance(value, DlmUserError) else 500, str(value))
        return ""

    def _finish(self) -> None:
        outcome = "ok"
        errors = [c.error for c in self.choices if c.error is not None]
        if errors:
            outcome = {504: "timeout", 503: "shutdown", 499: "disconnected"}.get(errors[0][0], "error")
        self.metrics.requests_total.labels(self.endpoint, outcome).inc()
        self.metrics.latency.labels(self.endpoint).observe(time.monotonic() - self.arrival)
        self.metrics.on_tokens(sum(c.tracker.tokens for c in self.choices))

    def usage(self) -> dict[str, int]:
        prompt = sum(c.prompt_tokens for c in self.choices[:: self.body.n])
        completion = sum(c.tracker.tokens for c in self.choices)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _choice_body(self, choice: _Choice) -> dict[str, Any]:
        text = choice.tracker.sent
        if self.echo is not None:
            text = self.echo[choice.index // self.body.n] + text
        reason = choice.tracker.finish_reason or "length"
        if self.chat:
            message = {"role": "assistant", "content": text}
            return {"index": choice.index, "message": message, "finish_reason": reason, "logprobs": None}
        return {"index": choice.index, "text": text, "logprobs": None, "finish_reason": reason}

    async def complete(self, request: Request, *, model_name: str) -> Any:
        async for index, kind, value in self.items(request):
            self.consume(index, kind, value)
        if self.disconnected:
            return Response(status_code=499)
        self._finish()
        errors = [c.error for c in self.choices if c.error is not None]
        if errors:
            return _error(*errors[0])
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": model_name,
            "choices": [self._choice_body(c) for c in self.choices],
            "usage": self.usage(),
            "dlm": {
                "nfe": [c.nfe for c in self.choices],
                "steps": [c.steps for c in self.choices],
                "tokens": [c.region for c in self.choices],
            },
        }

    def _chunk(self, model_name: str, index: int, text: str | None, reason: str | None,
               role: bool = False) -> dict[str, Any]:
        if self.chat:
            delta: dict[str, Any] = {}
            if role:
                delta["role"] = "assistant"
            if text is not None:
                delta["content"] = text
            choice = {"index": index, "delta": delta, "finish_reason": reason, "logprobs": None}
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": reason}
        return {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": model_name,
            "choices": [choice],
        }

    async def sse(self, request: Request, *, model_name: str) -> AsyncIterator[dict[str, str]]:
        body = self.body
        try:
            for choice in self.choices:
                if body.dlm_events:
                    start = {"index": choice.index, "prompt_tokens": choice.prompt_tokens}
                    yield {"event": "dlm.start", "data": json.dumps(start)}
                if self.chat:
                    yield {"data": json.dumps(self._chunk(model_name, choice.index, "", None, role=True))}
                if self.echo is not None:
                    text = self.echo[choice.index // body.n]
                    yield {"data": json.dumps(self._chunk(model_name, choice.index, text, None))}
            async for index, kind, value in self.items(request):
                choice = self.choices[index]
                delta = self.consume(index, kind, value)
                if body.dlm_events and kind == "step":
                    yield {"event": "dlm.step", "data": json.dumps(_step_payload(index, value, self))}
                if delta:
                    yield {"data": json.dumps(self._chunk(model_name, index, delta, None))}
                if choice.ended:
                    if choice.error is not None:
                        status, message = choice.error
                        error = {"error": {"message": message, "type": "server_error", "code": status}}
                        yield {"data": json.dumps(error)}
                        self.cancel()
                        break
                    reason = choice.tracker.finish_reason or "length"
                    if body.dlm_events:
                        done = {"index": index, "nfe": choice.nfe, "steps": choice.steps,
                                "finish_reason": reason, "text": choice.tracker.sent,
                                "tokens": choice.tracker.tokens, "wall_time": choice.wall_time}
                        yield {"event": "dlm.done", "data": json.dumps(done)}
                    yield {"data": json.dumps(self._chunk(model_name, index, None if self.chat else "", reason))}
            if self.disconnected:
                return
            self._finish()
            if body.stream_options is not None and body.stream_options.include_usage:
                usage = {**self._chunk(model_name, 0, None, None), "choices": [], "usage": self.usage()}
                yield {"data": json.dumps(usage)}
            yield {"data": "[DONE]"}
        finally:
            self.cancel()  # a client that went away: its rows leave at the next step


def _step_payload(index: int, event, exchange: _Exchange) -> dict[str, Any]:
    """A ``dlm.step`` event: what the step committed, for the page's canvas."""
    positions = event.positions(0)
    tokens = event.tokens(0)
    tokenizer = exchange.choices[index].tracker.tokenizer
    texts = [tokenizer.decode([t]) for t in tokens]
    mask_id = exchange.choices[index].tracker.mask_token_id
    masked = int((event.region[0] == mask_id).sum())
    return {
        "index": index, "step": event.step, "block": event.block, "nfe": event.nfe,
        "positions": positions, "tokens": tokens, "texts": texts, "masked": masked,
        "length": int(event.region.shape[1]),
    }
