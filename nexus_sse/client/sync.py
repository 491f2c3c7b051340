"""The synchronous client: the I/O around the shared core (``client/core.py``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from nexus_sse.client.common import Cursor, json_body
from nexus_sse.client.core import BaseNexusClient, Follower, Step, outcome
from nexus_sse.client.events import Event


class NexusClient(BaseNexusClient[httpx.Client]):
    """Run workflows and read runs on a nexus_sse server; dropped streams resume by themselves.

    ``base_url`` is where the app is mounted (``http://host/nexus``). Auth: ``token`` (sent as
    ``Authorization: Token``), ``cookies`` (a session; the CSRF cookie is echoed on POSTs), or
    ``stream_token`` (a signed token from ``/api/stream-tokens/``).
    """

    def _new_http(self, timeout: httpx.Timeout, cookies: Any, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(timeout=timeout, cookies=cookies, headers=headers)

    def __enter__(self) -> NexusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def stream(
        self,
        workflow: str | None,
        inputs: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        cursor: Cursor | None = None,
    ) -> Iterator[Event]:
        """Start a run and yield its events to the end (resuming, never re-running, after drops)."""
        yield from self._follow(self._start(workflow, inputs, url, cursor))

    def attach(self, run_id: str, last_event_id: str | None = None) -> Iterator[Event]:
        """Yield a run's events after ``last_event_id`` (all of them when None), then live."""
        yield from self._follow(self._attach(run_id, last_event_id))

    def run(
        self, workflow: str | None, inputs: dict[str, Any] | None = None, *, url: str | None = None
    ) -> Any:
        """Run a workflow to its end: its result, or the typed error of its ``error`` event."""
        cursor = Cursor()
        last = None
        for event in self.stream(workflow, inputs, url=url, cursor=cursor):
            last = event
        return outcome(last, cursor.run_id)

    def status(self, run_id: str) -> dict[str, Any]:
        """The run as JSON (its status, and its result once finished)."""
        request = self._status_request(run_id)
        response = self.http.request(
            request.method, request.url, params=request.params, headers=request.headers
        )
        return self._answer(response, run_id)

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask the server to cancel the run."""
        request = self._cancel_request(run_id)
        response = self.http.request(request.method, request.url, headers=request.headers)
        return self._answer(response, run_id, posted=True)

    def _follow(self, follower: Follower) -> Iterator[Event]:
        while True:
            r = follower.next_request()
            try:
                with connect_sse(
                    self.http, r.method, r.url, params=r.params, json=r.json, headers=r.headers
                ) as source:
                    response = source.response
                    step = follower.on_response(response.status_code, response.headers)
                    if step is Step.END:
                        return
                    if step is Step.REFUSED:
                        response.read()
                        follower.on_refusal(response.status_code, json_body(response))
                    else:
                        for sse in source.iter_sse():
                            event = follower.on_event(sse.event, sse.data, sse.id, sse.retry)
                            if event is not None:
                                yield event
                            if follower.done:
                                return
            except httpx.TransportError as exc:
                follower.on_drop(exc)
            time.sleep(follower.delay())


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
