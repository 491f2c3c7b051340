"""The demo site's ASGI application driven in process: one request, the response as the app sent it.

For what needs no real socket: which path serves a request (the fast path or Django), statuses,
headers, bodies, and the chunks of a stream with their ``more_body`` flags (a run stream ends its
body with the terminal event's own chunk). What only a server shows (TCP disconnects, backpressure,
daphne's ways, signals, several processes) stays in the tests that start one (tests/live.py).

The client leaves as uvicorn reports it: ``http.disconnect`` once the response is complete, or
as soon as ``stop(response)`` is true (a client that hangs up mid-stream).

Tests that use it take the ``workflows`` fixture and ``@pytest.mark.django_db(transaction=True)``:
nexus_sse reads and writes on its own database threads, which see committed rows only.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.test import override_settings

from nexus_sse import sse

JSON = "application/json"
NO_BODY = object()


@dataclass
class Response:
    """What the application sent: the start message and every body message, in order."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    #: one (body, more_body) pair per ``http.response.body`` message
    chunks: list[tuple[bytes, bool]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), None when absent."""
        wanted = name.lower().encode("latin1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin1")
        return None

    @property
    def body(self) -> bytes:
        return b"".join(body for body, _ in self.chunks)

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def complete(self) -> bool:
        """Whether the body was ended (a message without ``more_body``)."""
        return bool(self.chunks) and not self.chunks[-1][1]

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def events(self) -> list[sse.ServerSentEvent]:
        """The events with data (the lone ``retry:`` block skipped), as sse_helpers.take gives them."""
        return [event for event in sse.parse(self.body) if event.data]


def served_by_django(response: Response) -> bool:
    """The demo site's SecurityMiddleware (outermost) marks what went through Django's handler."""
    return response.header("X-Content-Type-Options") == "nosniff"


def after_events(count: int) -> Callable[[Response], bool]:
    """A ``stop`` for :func:`request`: the client leaves once ``count`` events have arrived."""
    return lambda response: len(response.events()) >= count


def scope(
    method: str, target: str, headers: list[tuple[bytes, bytes]], root_path: str = ""
) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it: ``path`` percent-decoded, the query string raw."""
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin1"),
        "query_string": query.encode("latin1"),
        "root_path": root_path,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


def _headers(given: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes | None) -> list:
    pairs = _pairs(given)
    names = {name.lower() for name, _ in pairs}
    if "host" not in names:
        pairs.insert(0, ("Host", "127.0.0.1"))
    if body is not None and "content-length" not in names:
        pairs.append(("Content-Length", str(len(body))))
    return [(name.lower().encode("latin1"), value.encode("latin1")) for name, value in pairs]


async def request(
    method: str,
    target: str,
    *,
    json: Any = NO_BODY,
    body: bytes | None = None,
    parts: list[bytes] | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    root_path: str = "",
    stop: Callable[[Response], bool] | None = None,
    app: Any = None,
    deadline: float = 10.0,
) -> Response:
    """Send one request to ``app`` (default: ``project.asgi.application``) and collect its answer.

    ``json`` is sent as a JSON body, ``body`` as bytes, ``parts`` as a body in several messages
    (chunked: no Content-Length). ``target`` may carry a query string. The application must be done
    within ``deadline`` seconds (else TimeoutError: over a socket, the client would hang)."""
    if app is None:
        from project.asgi import application as app
    if json is not NO_BODY:
        body = jsonlib.dumps(json).encode()
        headers = [*_pairs(headers), ("Content-Type", JSON)]
    if body is None and parts is None and method in ("POST", "PUT", "PATCH"):
        body = b""  # as httpx sends it: Content-Length: 0
    messages = (
        [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
        if parts is not None
        else [{"type": "http.request", "body": body or b"", "more_body": False}]
    )
    messages.reverse()
    response = Response()
    left = asyncio.Event()

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            response.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            response.chunks.append((message.get("body", b""), message.get("more_body", False)))
        if response.complete or (stop is not None and stop(response)):
            left.set()

    asgi_scope = scope(method, target, _headers(headers, body if parts is None else None), root_path)
    await asyncio.wait_for(app(asgi_scope, receive, send), deadline)
    return response


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(headers.items() if isinstance(headers, Mapping) else headers)


def nexus_settings(**overrides: Any) -> override_settings:
    """``override_settings`` of some NEXUS_SSE keys, the test settings' other keys kept."""
    return override_settings(NEXUS_SSE={**settings.NEXUS_SSE, **overrides})


async def eventually(check: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Await ``check()`` until it gives something truthy (a condition with a deadline)."""
    deadline = time.monotonic() + within
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)
    return value
