"""What the sync and async clients share: URLs, headers, the resume state and its backoff."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from nexus_sse.client.events import Event, make_event
from nexus_sse.exceptions import AuthenticationError, NexusError

#: answers to a *resume* that mean "not now" (the open-stream cap, a draining or restarting server, a
#: proxy without a backend): wait and try again. A resume is a GET, so trying again is harmless; the
#: request that starts a run is never repeated (it may have started one).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def split_url(url_or_base: str, workflow: str | None) -> tuple[str, str]:
    """``(base, workflow)`` from a base URL plus a name, or a full ``.../workflows/<name>/execute`` URL."""
    url = url_or_base.rstrip("/")
    if url.endswith("/execute") and "/workflows/" in url:
        base, _, rest = url.rpartition("/workflows/")
        return base, rest.removesuffix("/execute")
    if not workflow:
        raise ValueError("give a workflow name, or the full .../workflows/<name>/execute URL")
    return url, workflow


@dataclass
class Options:
    """Connection behaviour shared by both clients."""

    token: str | None = None
    stream_token: str | None = None
    connect_timeout: float = 10.0
    silence_timeout: float = 60.0  # no byte (not even a keepalive) for this long: the connection is dead
    max_retries: int = 8
    max_backoff: float = 30.0
    on_reconnect: Callable[[int, float], None] | None = None  # (attempt, delay) before each reconnect

    def params(self) -> dict[str, str]:
        """Query parameters of a GET: the stream token, if any (the server takes it on GETs only)."""
        return {"stream_token": self.stream_token} if self.stream_token else {}

    def explain_refused_post(self, error: NexusError, has_session: bool) -> NexusError:
        """A clear error when a POST (cancel) was refused because only a stream token was given.

        Stream tokens travel in URLs and so only open streams; the server ignores them on POSTs. The
        server's own answer (401, or 404 for a run it will not show an anonymous caller) would not say so.
        """
        if (
            not self.stream_token
            or self.token
            or has_session
            or error.extra.get("http_status") not in (401, 403, 404)
        ):
            return error
        return AuthenticationError(
            f"{error.message}: a stream token only opens streams (GET); to cancel, give the client "
            "token=<API token> or a logged-in session's cookies",
            **error.extra,
        )

    def headers(self) -> dict[str, str]:
        """Headers of every request: SSE wanted, the API token if any."""
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers


@dataclass
class Cursor:
    """Where a stream is: the run, the last event seen, the server's retry hint, how many tries."""

    run_id: str | None = None
    last_id: str | None = None
    retry_ms: int = 3000
    attempt: int = 0
    done: bool = False
    resumable: bool = True
    retry_after: float = 0.0  # the Retry-After of the last refused resume, seconds

    @property
    def last_seq(self) -> int:
        tail = (self.last_id or "").rpartition(":")[2]
        return int(tail) if tail.isdigit() else 0

    def accept(self, name: str, raw: str, event_id: str | None, retry: int | None) -> Event | None:
        """Turn a parsed SSE event into a typed one, or None for retry-only blocks and replays."""
        if retry is not None:
            self.retry_ms = retry
        if not raw:
            return None
        event = make_event(name, raw, event_id)
        if event.seq is not None and event.run_id and ":" in (event_id or ""):
            if event.seq <= self.last_seq:
                return None  # never hand the same event out twice
            self.run_id = event.run_id
            self.last_id = event.id
        elif event_id:  # Kailash Nexus: ids are a per-request counter; a reconnect would re-run
            self.resumable = False
            self.run_id = self.run_id or event.data.get("run_id")
        self.attempt = 0
        self.done = event.terminal
        return event

    def next_delay(self, max_backoff: float) -> float:
        """The wait before the next reconnect: never sooner than the server asked.

        The server's ``retry:`` hint doubled per failed try, with jitter above it (x1 to x1.5) so clients
        cut at once do not return at once, capped at ``max_backoff`` (jittered below the cap, x0.8 to x1).
        Never less than the hint or the last Retry-After, even when those exceed ``max_backoff``.
        """
        retry = self.retry_ms / 1000
        floor = max(retry, self.retry_after)
        delay = retry * 2**self.attempt * random.uniform(1.0, 1.5)
        if delay > max_backoff:
            delay = max_backoff * random.uniform(0.8, 1.0)
        self.attempt += 1
        self.retry_after = 0.0
        return max(delay, floor)

    def retry_later(self, status: int, headers: Mapping[str, str], resuming: bool) -> bool:
        """Whether a refused answer to a resume (429, 5xx) should be tried again after a backoff."""
        if not resuming or status not in RETRY_STATUSES:
            return False
        try:
            self.retry_after = max(0.0, float(headers.get("retry-after") or 0))
        except ValueError:  # an HTTP date: the retry hint applies
            self.retry_after = 0.0
        return True


class Request(NamedTuple):
    """An HTTP request to send, as data: the I/O layer passes its fields to httpx."""

    method: str
    url: str
    params: dict[str, str] | None
    headers: dict[str, str]
    json: Any = None
    #: a GET that resumes a known run: refusals of it may be retried (the start never is)
    resuming: bool = False


def execute_request(base: str, workflow: str, inputs: dict[str, Any], options: Options) -> Request:
    """How to start a run: POST (or GET with the stream token, for token-bound access)."""
    url = f"{base}/workflows/{quote(workflow, safe='')}/execute"
    if options.stream_token:
        params = {"inputs": json.dumps(inputs), "stream_token": options.stream_token}
        return Request("GET", url, params, {})
    return Request("POST", url, None, {}, {"inputs": inputs, "mode": "stream"})


def events_request(base: str, cursor: Cursor, options: Options) -> Request:
    """How to resume a run: GET its events after the last one seen."""
    headers = {"Last-Event-ID": cursor.last_id} if cursor.last_id else {}
    url = f"{base}/runs/{cursor.run_id}/events"
    return Request("GET", url, options.params(), headers, resuming=True)


def json_body(response: httpx.Response) -> Any:
    """The JSON of an (already read) error answer, or ``{}`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return {}
