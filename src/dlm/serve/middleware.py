"""Two small ASGI middlewares of the server: structured access logs and a request size limit.

``AccessLog`` writes one JSON object per request to the ``dlm.serve.access`` logger (method,
path, status, milliseconds, client, request id; the id is also sent back as
``X-Request-Id``). ``BodyLimit`` answers 413 to a body over the limit, by its
``Content-Length`` or, for a chunked body, as soon as the bytes read pass it. Both are pure ASGI
(no ``BaseHTTPMiddleware``), so streaming responses and disconnects pass through untouched.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

__all__ = ["AccessLog", "BodyLimit"]

access_log = logging.getLogger("dlm.serve.access")


class AccessLog:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        status = [0]

        async def send_logged(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "time": round(time.time(), 3),
                        "request_id": request_id,
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status[0],
                        "ms": round(1000 * (time.perf_counter() - start), 2),
                        "client": f"{client[0]}:{client[1]}" if client else None,
                    }
                )
            )


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _reject(self, send) -> None:
        body = json.dumps(
            {
                "error": {
                    "message": f"request body over the server's limit of {self.max_bytes} bytes",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._reject(send)
                return
        seen = [0]
        started = [False]

        async def counted():
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_bytes:
                    raise _TooLarge
            return message

        async def send_tracked(message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self.app(scope, counted, send_tracked)
        except _TooLarge:
            if not started[0]:
                await self._reject(send)
