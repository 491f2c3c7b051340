"""The clients' sans-I/O core: what to send, what an answer means, when to resume and how.

``NexusClient`` and ``AsyncNexusClient`` differ only in how they send requests and wait; every
decision is made here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Generic, TypeVar

import httpx

from nexus_sse.client.common import (
    Cursor,
    Options,
    Request,
    events_request,
    execute_request,
    json_body,
    split_url,
)
from nexus_sse.client.errors import ConnectionLost, error_from
from nexus_sse.client.events import Event

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class Step(Enum):
    """What to do with an answer: read its events, read why it was refused, or stop."""

    EVENTS = "events"
    REFUSED = "refused"
    END = "end"


class Follower:
    """Follow one run's stream across dropped connections, deciding everything, doing no I/O.

    The I/O loop: send ``next_request()``; pass the answer to ``on_response()``; for ``Step.EVENTS``
    pass each event to ``on_event()`` until ``done``; for ``Step.REFUSED`` pass the body to
    ``on_refusal()``; after a drop (``on_drop()``) or a stream that ended early, wait ``delay()``.
    """

    def __init__(
        self,
        base: str,
        request: Request,
        cursor: Cursor,
        options: Options,
        csrf: Callable[[], dict[str, str]],
    ) -> None:
        self.base = base
        self.request = request
        self.cursor = cursor
        self.options = options
        self.csrf = csrf
        self.reason = ""  # why the last connection ended, for ConnectionLost
        self._retry = False  # the last refusal is worth another try

    @property
    def done(self) -> bool:
        """The run's terminal event has been handed out."""
        return self.cursor.done

    def next_request(self) -> Request:
        """The request to send now (a POST echoes the session's CSRF cookie)."""
        request = self.request
        if request.method == "POST":
            return request._replace(headers={**request.headers, **self.csrf()})
        return request

    def on_response(self, status: int, headers: Mapping[str, str]) -> Step:
        """Judge an answer by its status and headers."""
        cursor = self.cursor
        if status == 204:
            return Step.END
        if status >= 400:
            self._retry = cursor.retry_later(status, headers, self.request.resuming)
            self.reason = f"the server answered {status}"
            return Step.REFUSED
        cursor.run_id = cursor.run_id or headers.get("x-run-id")
        self.reason = "the stream ended early"
        return Step.EVENTS

    def on_refusal(self, status: int, body: Any) -> None:
        """Raise the typed error of a refused request, unless it is a resume to try again."""
        if not self._retry:
            raise error_from(body, status, self.cursor.run_id)

    def on_event(self, name: str, data: str, event_id: str | None, retry: int | None) -> Event | None:
        """The typed event to hand out, or None (a retry-only block, or an event seen before)."""
        return self.cursor.accept(name, data, event_id, retry)

    def on_drop(self, exc: Exception) -> None:
        """Note a drop, a reset, or silence past ``silence_timeout``."""
        self.reason = type(exc).__name__

    def delay(self) -> float:
        """Seconds to wait before resuming; raise ConnectionLost when the run cannot be resumed."""
        cursor, options = self.cursor, self.options
        if not (cursor.run_id and cursor.resumable) or cursor.attempt >= options.max_retries:
            raise ConnectionLost(
                f"connection lost ({self.reason}) and the run cannot be resumed", run_id=cursor.run_id
            )
        delay = cursor.next_delay(options.max_backoff)
        if options.on_reconnect:
            options.on_reconnect(cursor.attempt, delay)
        self.request = events_request(self.base, cursor, options)
        return delay


def outcome(last: Event | None, run_id: str | None) -> Any:
    """The result of a run whose last event was ``last``; its typed error, or ConnectionLost."""
    if last is None or not last.terminal:
        raise ConnectionLost("the stream ended before the run did", run_id=run_id)
    if last.event == "error":
        raise error_from(last.data, run_id=run_id)
    return last.data.get("result")


class BaseNexusClient(Generic[H]):
    """What both clients share besides I/O: options, the requests to send, reading answers."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        cookies: dict[str, str] | None = None,
        stream_token: str | None = None,
        connect_timeout: float = 10.0,
        silence_timeout: float = 60.0,
        max_retries: int = 8,
        max_backoff: float = 30.0,
        on_reconnect: Callable[[int, float], None] | None = None,
        http: H | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.options = Options(
            token, stream_token, connect_timeout, silence_timeout, max_retries, max_backoff, on_reconnect
        )
        timeout = httpx.Timeout(silence_timeout, connect=connect_timeout)
        self.http: H = http or self._new_http(timeout, cookies, self.options.headers())

    def _new_http(self, timeout: httpx.Timeout, cookies: Any, headers: dict[str, str]) -> H:
        raise NotImplementedError

    def _csrf(self) -> dict[str, str]:
        token = self.http.cookies.get("csrftoken")
        return {"X-CSRFToken": token} if token else {}

    def _start(
        self, workflow: str | None, inputs: dict[str, Any] | None, url: str | None, cursor: Cursor | None
    ) -> Follower:
        base, name = split_url(url or self.base, workflow)
        request = execute_request(base, name, inputs or {}, self.options)
        return Follower(base, request, cursor or Cursor(), self.options, self._csrf)

    def _attach(self, run_id: str, last_event_id: str | None) -> Follower:
        cursor = Cursor(run_id=run_id, last_id=last_event_id)
        request = events_request(self.base, cursor, self.options)
        return Follower(self.base, request, cursor, self.options, self._csrf)

    def _status_request(self, run_id: str) -> Request:
        headers = {"Accept": "application/json"}
        return Request("GET", f"{self.base}/runs/{run_id}", self.options.params(), headers)

    def _cancel_request(self, run_id: str) -> Request:
        return Request("POST", f"{self.base}/runs/{run_id}/cancel", None, self._csrf())

    def _answer(self, response: httpx.Response, run_id: str, *, posted: bool = False) -> Any:
        """The JSON of a read answer, or the typed error of a refused one."""
        if response.status_code < 400:
            return response.json()
        error = error_from(json_body(response), response.status_code, run_id)
        if posted:
            error = self.options.explain_refused_post(error, has_session=bool(self.http.cookies))
        raise error
