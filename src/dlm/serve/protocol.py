"""OpenAI request shapes (pydantic) and how a request becomes ``SamplerSettings``.

A request carries the OpenAI fields (``max_tokens``, ``temperature``, ``top_p``, ``seed``,
``stop``, ``n``, ``stream``, ``suffix`` ...) and, as extra body fields, any ``SamplerSettings``
field (``steps``, ``policy``, ``block_length``, ``threshold``, ``cache`` ...). Each is checked
on its own, so a bad one is a 400 that names it (``RequestError.param``); then the request
layer is resolved over the checkpoint's saved sampler defaults and the server's
``max_tokens`` default (``SamplerSettings.resolve``), the one place settings are made.

OpenAI fields ``dlm`` cannot honour with a diffusion sampler (``logprobs``, ``best_of``,
penalties, ``logit_bias``, tools) are refused with a 400 when set, never silently ignored.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dlm.errors import DlmUserError, SettingsError
from dlm.sampling import SamplerSettings

__all__ = [
    "ChatRequest",
    "CompletionRequest",
    "RequestError",
    "request_settings",
]

#: The dlm extension: stream each step's committed positions and tokens as ``dlm.step`` events.
DLM_FIELDS = ("dlm_events",)
#: Settings a request may not choose: they belong to the server's step, not to one row.
SERVER_ONLY = {"compile": "compile is a property of the server's batch step, not of a request"}


class RequestError(DlmUserError):
    """A 400 (or ``status``): the message, and the request field it is about (``param``)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param, self.status = param, status


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


class _Common(BaseModel):
    """Fields both endpoints take; extra fields are kept for ``request_settings``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    dlm_events: bool = False

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > 4:
            raise RequestError("stop takes at most 4 strings", "stop")
        return [s for s in stops if s]

    def check_unsupported(self) -> None:
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise RequestError(
                    f"{name} is not supported by a diffusion sampler; leave it out or 0", name
                )
        if self.logit_bias:
            raise RequestError("logit_bias is not supported; leave it out", "logit_bias")


class CompletionRequest(_Common):
    """``/v1/completions``: ``prompt`` as text, a list of texts, ids, or a list of id lists."""

    prompt: str | list[str] | list[int] | list[list[int]]
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None

    def check_unsupported(self) -> None:
        super().check_unsupported()
        if self.logprobs is not None:
            raise RequestError(
                "logprobs is not supported: a diffusion sampler commits tokens out of order and "
                "has no left-to-right log-probabilities; leave it out", "logprobs",
            )
        if self.best_of not in (None, 1):
            raise RequestError("best_of is not supported; use n", "best_of")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for part in self.content:
            if part.get("type") != "text":
                raise RequestError(
                    f"message content of type {part.get('type')!r} is not supported; send text",
                    "messages",
                )
            parts.append(str(part.get("text", "")))
        return "".join(parts)


class ChatRequest(_Common):
    """``/v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None

    def check_unsupported(self) -> None:
        super().check_unsupported()
        if self.logprobs:
            raise RequestError("logprobs is not supported; leave it out", "logprobs")
        if self.tools:
            raise RequestError("tools are not supported; leave them out", "tools")
        if self.response_format and self.response_format.get("type") not in (None, "text"):
            raise RequestError("only response_format {type: text} is supported", "response_format")
        if self.max_tokens and self.max_completion_tokens and self.max_tokens != self.max_completion_tokens:
            raise RequestError(
                "max_tokens and max_completion_tokens differ; give one", "max_completion_tokens"
            )

    def messages_as_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


def request_settings(
    request: _Common,
    *,
    checkpoint: dict[str, Any] | None,
    default_max_tokens: int,
) -> SamplerSettings:
    """The ``SamplerSettings`` of ``request``: its fields over the checkpoint's defaults over
    the server's; a ``RequestError`` naming the field for anything invalid."""
    request.check_unsupported()
    extras = dict(request.model_extra or {})
    layer: dict[str, Any] = {}
    valid = SamplerSettings.field_names()
    known = set(type(request).model_fields) | set(valid)
    for name, value in extras.items():
        if name in SERVER_ONLY:
            raise RequestError(SERVER_ONLY[name], name)
        if name not in valid:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise RequestError(
                f"unknown field {name!r}: a request takes the OpenAI fields and any "
                f"dlm.sampling.SamplerSettings field{hint}", name,
            )
        layer[name] = value
    max_tokens = request.max_tokens or getattr(request, "max_completion_tokens", None)
    if max_tokens is not None:
        if "max_new_tokens" in layer and layer["max_new_tokens"] != max_tokens:
            raise RequestError("max_tokens and max_new_tokens differ; give one", "max_new_tokens")
        layer["max_new_tokens"] = max_tokens
    for name in ("temperature", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            layer[name] = value
    for name, value in layer.items():
        try:
            SamplerSettings.coerce(name, value)
        except SettingsError as err:
            raise RequestError(str(err), name) from None
    try:
        return SamplerSettings.resolve(
            request=layer, checkpoint=checkpoint, defaults={"max_new_tokens": default_max_tokens}
        ).settings
    except SettingsError as err:
        raise RequestError(str(err)) from None
