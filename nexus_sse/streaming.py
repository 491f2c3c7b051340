"""SSE responses: the public helper for any async iterable, and the stream of a run's events.

Every stream sends ``retry:`` at once, ``:keepalive`` while idle, ends itself with an ``error`` event
instead of letting an exception escape (daphne would leave the connection hanging), and cleans up
in ``finally`` when the client goes away. A run's stream is a :class:`~nexus_sse.follower.RunFollower`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from nexus_sse import conf, sse
from nexus_sse.eventlog import LogEvent
from nexus_sse.exceptions import EventLogUnavailable
from nexus_sse.follower import RunFollower, release_request_thread, replay_archive

logger = logging.getLogger("nexus_sse.streaming")

CONTENT_TYPE = "text/event-stream; charset=utf-8"


def sse_response(
    events: AsyncIterable[Any],
    *,
    request: HttpRequest | None = None,
    keepalive: float | None = None,
    retry: int | None = None,
    headers: dict[str, str] | None = None,
) -> StreamingHttpResponse:
    """Turn an async iterable of events into an SSE ``StreamingHttpResponse``.

    Items may be ``bytes`` (sent as they are), ``sse.ServerSentEvent`` or dicts with ``event``,
    ``data`` (JSON-encoded unless a str), ``id`` and ``retry`` keys. Keepalive comments are sent every
    ``keepalive`` seconds (default KEEPALIVE_SECONDS; 0 turns them off) while the iterable is silent.
    ``retry`` (milliseconds, default RETRY_MILLISECONDS) is the reconnection delay sent first. Pass
    ``request`` so GZipMiddleware cannot buffer the stream.

    Raises ValueError for a negative or non-finite ``keepalive``, or a ``retry`` that is not an
    int >= 0.
    """
    interval = conf.get("KEEPALIVE_SECONDS") if keepalive is None else keepalive
    if not math.isfinite(interval) or interval < 0:
        raise ValueError(f"keepalive must be a finite number of seconds >= 0 (0: off), not {interval!r}")
    if retry is not None and (not isinstance(retry, int) or isinstance(retry, bool) or retry < 0):
        raise ValueError(f"retry must be an int of milliseconds >= 0, or None; not {retry!r}")
    greeting = sse.retry(conf.get("RETRY_MILLISECONDS") if retry is None else retry)
    body = _encoded(events)
    if interval:
        body = _with_keepalive(body, interval)
    return _response(_greet_and_catch(body, greeting), request=request, headers=headers)


def run_callbacks(callbacks: list[Callable[[], object]]) -> None:
    """Run ``on_close`` callbacks, each taken off the list as it runs; one that raises is logged and
    the rest still run (they release what a stream held: a stream slot, a subscription)."""
    while callbacks:
        callback = callbacks.pop(0)
        try:
            callback()
        except Exception:
            logger.exception("on_close callback %r failed", callback)


class SSEResponse(StreamingHttpResponse):
    """A streaming response that runs ``on_close`` callbacks when Django closes it (however it ended)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *args: Any,
        on_close: Iterable[Callable[[], object]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(content, *args, **kwargs)
        #: the body as it is, bytes already (the fast path sends these without Django's wrappers)
        self.chunks = content
        #: callbacks to run once when the response ends (run_callbacks). The fast path runs them
        #: itself: close() would also send request_finished, and it sent no request_started.
        self.on_close = list(on_close or [])

    def close(self) -> None:
        try:
            run_callbacks(self.on_close)
        finally:
            super().close()


def _response(
    content: AsyncIterator[bytes],
    *,
    request: HttpRequest | None,
    headers: dict | None,
    on_close: Iterable[Callable[[], object]] | None = None,
) -> SSEResponse:
    if request is not None:
        # GZipMiddleware compresses streams in blocks, holding events back. It looks at
        # Accept-Encoding when the response passes through it; without it, it leaves us alone.
        request.META.pop("HTTP_ACCEPT_ENCODING", None)
    response = SSEResponse(content, content_type=CONTENT_TYPE, on_close=on_close)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    for name, value in (headers or {}).items():
        response[name] = value  # Django refuses CR/LF in header values
    return response


def error_event(message: str, error_type: str = "InternalError", run_id: str | None = None) -> bytes:
    data: dict[str, Any] = {"error": message, "error_type": error_type}
    if run_id:
        data["run_id"] = run_id
    data["timestamp"] = time.time()
    return sse.encode("error", data)


async def _greet_and_catch(
    body: AsyncIterator[bytes], greeting: bytes, run_id: str | None = None, release_thread: bool = True
) -> AsyncIterator[bytes]:
    """Send ``greeting`` (the ``retry:`` hint; run streams send theirs with their first events), then
    ``body``; an exception in it ends the stream with an ``error`` event instead of escaping."""
    if greeting:
        yield greeting
    try:
        if release_thread:
            await release_request_thread()
        async for chunk in body:
            yield chunk
    except EventLogUnavailable as exc:  # its message is public: it names the server, never credentials
        logger.warning("stream%s ended: %s", f" of run {run_id}" if run_id else "", exc.message)
        yield error_event(f"{exc.message} Reconnect to resume.", exc.error_type, run_id=run_id)
    except Exception:
        logger.exception("stream%s failed", f" of run {run_id}" if run_id else "")
        yield error_event("The stream failed; reconnect to resume.", run_id=run_id)


async def _encoded(events: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for item in events:
        if isinstance(item, bytes):
            yield item
        elif isinstance(item, sse.ServerSentEvent):
            yield sse.encode(item.event, item.data, id=item.id, retry=item.retry, multiline=True)
        elif isinstance(item, dict):
            yield sse.encode(item.get("event"), item.get("data"), id=item.get("id"), retry=item.get("retry"))
        else:
            raise TypeError(f"cannot encode {type(item).__name__} as an SSE event")


async def _with_keepalive(source: AsyncIterator[bytes], interval: float) -> AsyncIterator[bytes]:
    """Yield from ``source``, plus a keepalive whenever it is silent for ``interval`` seconds.

    The pending ``__anext__`` runs as a task that survives the timeout, so the source is never
    cancelled mid-item. (A run's stream has keepalives of its own, RunFollower.idle: its wait on the
    event log is timed already, and wrapping it here would cost a task and a timer per batch.)
    """
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait((pending,), timeout=interval)
            if not done:
                yield sse.KEEPALIVE
                continue
            future, pending = pending, None
            try:
                chunk = future.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


def run_stream(
    run_id: str,
    after: int,
    *,
    request: HttpRequest | None = None,
    on_close: list | None = None,
    executor: str | None = None,
    requested_at: float | None = None,
) -> StreamingHttpResponse:
    """The SSE response of a run in the event log: replay after ``after``, then live, to its end.

    ``executor`` (the run's executing process) lets the stream notice, while idle, that it died."""
    follower = RunFollower(run_id, after, executor, requested_at)
    return _response(
        _greet_and_catch(follower.stream(), b"", run_id, release_thread=False),
        request=request,
        headers={"X-Run-Id": run_id},
        on_close=on_close,
    )


def archive_stream(
    run_id: str, first: list[LogEvent], *, request: HttpRequest | None = None, on_close: list | None = None
) -> StreamingHttpResponse:
    """The SSE response of a finished run replayed from the database archive: ``first`` (its first
    page of events), then the rest a page of READ_BATCH at a time, so memory does not grow with the run."""
    greeting = sse.retry(conf.get("RETRY_MILLISECONDS"))
    return _response(
        _greet_and_catch(replay_archive(run_id, first), greeting, run_id),
        request=request,
        headers={"X-Run-Id": run_id},
        on_close=on_close,
    )
