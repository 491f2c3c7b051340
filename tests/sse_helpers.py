"""Reading SSE over real sockets in tests (httpx + httpx-sse)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from httpx_sse import ServerSentEvent, connect_sse

ACCEPT_SSE = {"Accept": "text/event-stream"}


def take(
    client: httpx.Client, method: str, url: str, limit: int | None = None, **kwargs
) -> list[ServerSentEvent]:
    """Events with data (the lone `retry:` block skipped), stopping after ``limit`` (then disconnecting)."""
    events: list[ServerSentEvent] = []
    with connect_sse(client, method, url, **kwargs) as source:
        source.response.raise_for_status()
        for event in source.iter_sse():
            if not event.data:
                continue
            events.append(event)
            if limit is not None and len(events) >= limit:
                break
    return events


def raw_stream(client: httpx.Client, method: str, url: str, **kwargs) -> tuple[httpx.Response, bytes]:
    """The whole response body as bytes, as it came off the wire."""
    with client.stream(method, url, **kwargs) as response:
        body = b"".join(response.iter_raw())
    return response, body


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (a condition with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def run_status(client: httpx.Client, run_id: str) -> dict:
    response = client.get(f"/runs/{run_id}")
    response.raise_for_status()
    return response.json()
