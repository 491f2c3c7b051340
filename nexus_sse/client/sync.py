"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from nexus_sse.client.common import Cursor, Options, events_request, execute_request, split_url
from nexus_sse.client.errors import ConnectionLost, error_from
from nexus_sse.client.events import Event


class NexusClient:
    """Run workflows and read runs on a nexus_sse server; dropped streams resume by themselves.

    ``base_url`` is where the app is mounted (``http://host/nexus``). Auth: ``token`` (sent as
    ``Authorization: Token``), ``cookies`` (a session; the CSRF cookie is echoed on POSTs), or
    ``stream_token`` (a signed token from ``/api/stream-tokens/``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cookies: dict | None = None,
        stream_token: str | None = None,
        connect_timeout: float = 10.0,
        silence_timeout: float = 60.0,
        max_retries: int = 8,
        max_backoff: float = 30.0,
        on_reconnect=None,
        http: httpx.Client | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.options = Options(
            token, stream_token, connect_timeout, silence_timeout, max_retries, max_backoff, on_reconnect
        )
        self.http = http or httpx.Client(
            timeout=httpx.Timeout(silence_timeout, connect=connect_timeout),
            cookies=cookies,
            headers=self.options.headers(),
        )

    def __enter__(self) -> NexusClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _csrf(self) -> dict[str, str]:
        token = self.http.cookies.get("csrftoken")
        return {"X-CSRFToken": token} if token else {}

    def stream(
        self,
        workflow: str | None,
        inputs: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        cursor: Cursor | None = None,
    ) -> Iterator[Event]:
        """Start a run and yield its events to the end (resuming, never re-running, after drops)."""
        base, name = split_url(url or self.base, workflow)
        cursor = cursor or Cursor()
        yield from self._follow(base, execute_request(base, name, inputs or {}, self.options), cursor)

    def attach(self, run_id: str, last_event_id: str | None = None) -> Iterator[Event]:
        """Yield a run's events after ``last_event_id`` (all of them when None), then live."""
        cursor = Cursor(run_id=run_id, last_id=last_event_id)
        yield from self._follow(self.base, events_request(self.base, cursor, self.options), cursor)

    def run(
        self, workflow: str | None, inputs: dict[str, Any] | None = None, *, url: str | None = None
    ) -> Any:
        """Run a workflow to its end: its result, or the typed error of its ``error`` event."""
        cursor = Cursor()
        last = None
        for last in self.stream(workflow, inputs, url=url, cursor=cursor):
            pass
        if last is None or not last.terminal:
            raise ConnectionLost("the stream ended before the run did", run_id=cursor.run_id)
        if last.event == "error":
            raise error_from(last.data, run_id=cursor.run_id)
        return last.data.get("result")

    def status(self, run_id: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.base}/runs/{run_id}", params=self.options.params(), headers={"Accept": "application/json"}
        )
        if response.status_code >= 400:
            raise error_from(_json(response), response.status_code, run_id)
        return response.json()

    def cancel(self, run_id: str) -> dict[str, Any]:
        response = self.http.post(f"{self.base}/runs/{run_id}/cancel", headers=self._csrf())
        if response.status_code >= 400:
            error = error_from(_json(response), response.status_code, run_id)
            raise self.options.explain_refused_post(error, has_session=bool(self.http.cookies))
        return response.json()

    def _follow(self, base: str, request: dict[str, Any], cursor: Cursor) -> Iterator[Event]:
        while True:
            headers = {**request.get("headers", {}), **(self._csrf() if request["method"] == "POST" else {})}
            try:
                with connect_sse(
                    self.http,
                    request["method"],
                    request["url"],
                    params=request.get("params"),
                    json=request.get("json"),
                    headers=headers,
                ) as source:
                    response = source.response
                    if response.status_code == 204:
                        return
                    if response.status_code >= 400:
                        response.read()
                        if not cursor.retry_later(response, request.get("resuming", False)):
                            raise error_from(_json(response), response.status_code, cursor.run_id)
                        reason = f"the server answered {response.status_code}"
                    else:
                        cursor.run_id = cursor.run_id or response.headers.get("x-run-id")
                        for sse in source.iter_sse():
                            event = cursor.accept(sse.event, sse.data, sse.id, sse.retry)
                            if event is not None:
                                yield event
                            if cursor.done:
                                return
                        reason = "the stream ended early"
            except httpx.TransportError as exc:  # a drop, a reset, or silence past silence_timeout
                reason = type(exc).__name__
            if not (cursor.run_id and cursor.resumable) or cursor.attempt >= self.options.max_retries:
                raise ConnectionLost(
                    f"connection lost ({reason}) and the run cannot be resumed", run_id=cursor.run_id
                )
            delay = cursor.next_delay(self.options.max_backoff)
            if self.options.on_reconnect:
                self.options.on_reconnect(cursor.attempt, delay)
            time.sleep(delay)
            request = events_request(base, cursor, self.options)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def stream(
    url_or_base: str, workflow: str | None = None, inputs: dict[str, Any] | None = None, **options: Any
) -> Iterator[Event]:
    """Stream a run with a one-off client: ``stream("http://host", "chat", {"message": "hi"})``."""
    with NexusClient(url_or_base, **options) as client:
        yield from client.stream(workflow, inputs, url=url_or_base)


def run(
    url_or_base: str, workflow: str | None = None, inputs: dict[str, Any] | None = None, **options: Any
) -> Any:
    """Run a workflow to its end with a one-off client; its result, or a typed error."""
    with NexusClient(url_or_base, **options) as client:
        return client.run(workflow, inputs, url=url_or_base)
