"""The asyncio client: the same behaviour as the sync one, around the same core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from nexus_sse.client.common import Cursor, json_body
from nexus_sse.client.core import BaseNexusClient, Follower, Step, outcome
from nexus_sse.client.events import Event


class AsyncNexusClient(BaseNexusClient[httpx.AsyncClient]):
    """``NexusClient`` for asyncio: ``async for event in client.stream(...)``, ``await client.run(...)``."""

    def _new_http(self, timeout: httpx.Timeout, cookies: Any, headers: dict[str, str]) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, cookies=cookies, headers=headers)

    async def __aenter__(self) -> AsyncNexusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def stream(
        self,
        workflow: str | None,
        inputs: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        cursor: Cursor | None = None,
    ) -> AsyncIterator[Event]:
        """Start a run and yield its events to the end (resuming, never re-running, after drops)."""
        async for event in self._follow(self._start(workflow, inputs, url, cursor)):
            yield event

    async def attach(self, run_id: str, last_event_id: str | None = None) -> AsyncIterator[Event]:
        """Yield a run's events after ``last_event_id`` (all of them when None), then live."""
        async for event in self._follow(self._attach(run_id, last_event_id)):
            yield event

    async def run(
        self, workflow: str | None, inputs: dict[str, Any] | None = None, *, url: str | None = None
    ) -> Any:
        """Run a workflow to its end: its result, or the typed error of its ``error`` event."""
        cursor = Cursor()
        last = None
        async for event in self.stream(workflow, inputs, url=url, cursor=cursor):
            last = event
        return outcome(last, cursor.run_id)

    async def status(self, run_id: str) -> dict[str, Any]:
        """The run as JSON (its status, and its result once finished)."""
        request = self._status_request(run_id)
        response = await self.http.request(
            request.method, request.url, params=request.params, headers=request.headers
        )
        return self._answer(response, run_id)

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Ask the server to cancel the run."""
        request = self._cancel_request(run_id)
        response = await self.http.request(request.method, request.url, headers=request.headers)
        return self._answer(response, run_id, posted=True)

    async def _follow(self, follower: Follower) -> AsyncIterator[Event]:
        while True:
            r = follower.next_request()
            try:
                async with aconnect_sse(
                    self.http, r.method, r.url, params=r.params, json=r.json, headers=r.headers
                ) as source:
                    response = source.response
                    step = follower.on_response(response.status_code, response.headers)
                    if step is Step.END:
                        return
                    if step is Step.REFUSED:
                        await response.aread()
                        follower.on_refusal(response.status_code, json_body(response))
                    else:
                        async for sse in source.aiter_sse():
                            event = follower.on_event(sse.event, sse.data, sse.id, sse.retry)
                            if event is not None:
                                yield event
                            if follower.done:
                                return
            except httpx.TransportError as exc:
                follower.on_drop(exc)
            await asyncio.sleep(follower.delay())
