"""Bearer-token auth and request-size caps, as plain ASGI middleware (they answer before a body is read).

The token is compared in constant time. With no token configured every request is let through, which is why the
server refuses to listen beyond loopback without one (`check_bind`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from rag.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/health"})


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token: the API can read and delete the whole index."""
    if not token and not is_loopback(host):
        raise ConfigError(
            f"Refusing to listen on {host} without a token: anyone who can reach it could read or delete the "
            "index. Set RAG_API_TOKEN (e.g. `export RAG_API_TOKEN=$(openssl rand -hex 32)`) or use --host 127.0.0.1."
        )


def error_body(path: str, status: int, name: str, message: str) -> dict[str, Any]:
    """Our error shape; under `/v1`, OpenAI's (which the `openai` client parses into its exceptions)."""
    if path.startswith("/v1/"):
        return {"error": {"message": message, "type": name, "code": status}}
    return {"error": name, "message": message}


async def send_error(
    send: Send, path: str, status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(path, status, name, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """401 unless `Authorization: Bearer <token>` matches; `/health` is always open.

    CORS preflights never get here: the CORS layer (when configured) sits outside and answers them.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, given = header.partition(b" ")
        # compare_digest on bytes takes the same time wherever the first difference is.
        if scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token):
            return await self.app(scope, receive, send)
        why = "Missing" if not header else "Invalid"
        await send_error(
            send,
            scope["path"],
            401,
            "Unauthorized",
            f"{why} bearer token: send `Authorization: Bearer <RAG_API_TOKEN>`.",
            {"www-authenticate": "Bearer"},
        )


class LoopbackGuard:
    """Without a token, only this machine's own pages may call: 403 for a Host that is not a loopback name (DNS
    rebinding) or an Origin that is neither the server's own nor configured (a web page posting a form to us).
    """

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/")
        if host and not is_loopback(hostname):
            why = f"Host {host!r} is not this machine"
        elif origin and origin not in self.allowed and origin != f"http://{host}":
            why = f"Origin {origin!r} is not allowed (set RAG_API_CORS_ORIGINS to allow it)"
        else:
            return await self.app(scope, receive, send)
        message = f"{why}: without RAG_API_TOKEN the API answers only this machine's own requests."
        await send_error(send, scope["path"], 403, "Forbidden", message)


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI re-raises it from body parsing instead of calling it a parse error."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimit:
    """413 for a body over the cap: at once when Content-Length says so, else as soon as the count passes it."""

    def __init__(self, app: ASGIApp, default: int, per_path: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.per_path = per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope["path"], self.default)
        what = "file upload" if scope["path"] in self.per_path else "request body"
        too_large = f"The {what} is larger than the {limit / 1e6:g} MB limit (see `rag config`: api_max_*_mb)."
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await send_error(send, scope["path"], 413, "PayloadTooLarge", too_large)
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(too_large)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await send_error(send, scope["path"], 413, "PayloadTooLarge", too_large)
