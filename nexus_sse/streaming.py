"""SSE responses: the public helper for any async iterable, and the stream of a run's events.

Every stream sends ``retry:`` at once, ``:keepalive`` while idle, ends itself with an ``error`` event
instead of letting an exception escape (daphne would leave the connection hanging), and cleans up
in ``finally`` when the client goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from nexus_sse import conf, metrics, shutdown, sse
from nexus_sse.eventlog import LogEvent, get_event_log
from nexus_sse.eventlog.base import READ_BATCH
from nexus_sse.exceptions import EventLogUnavailable
from nexus_sse.logs import current_run

logger = logging.getLogger("nexus_sse.streaming")

CONTENT_TYPE = "text/event-stream; charset=utf-8"
#: a run stream idle this long gives back its request thread (see release_request_thread)
IDLE_RELEASE_SECONDS = 0.05
#: largest chunk a run stream yields (one bigger event goes alone). A backlog goes out in pieces, each
#: awaiting the server's ``send``: uvicorn makes that wait while its transport buffer is above its
#: 64 KiB high-water mark, so a slow reader holds at most about two such pieces in the server.
CHUNK_BYTES = 64 * 1024
#: the comment that ends a stream whose reader fell too far behind (after a ``retry:`` line)
SLOW_READER = sse.comment("slow reader; reconnect with Last-Event-ID")


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
    ``keepalive`` seconds (default KEEPALIVE_SECONDS) while the iterable is silent. Pass ``request``
    so GZipMiddleware cannot buffer the stream.
    """
    interval = conf.get("KEEPALIVE_SECONDS") if keepalive is None else keepalive
    body = _with_keepalive(_encoded(events), interval)
    return _response(_guarded(body, retry), request=request, headers=headers)


class SSEResponse(StreamingHttpResponse):
    """A streaming response that runs ``on_close`` callbacks when Django closes it (however it ended)."""

    def __init__(
        self, content: AsyncIterator[bytes], *args: Any, on_close: list | None = None, **kwargs: Any
    ) -> None:
        super().__init__(content, *args, **kwargs)
        #: the body as it is, bytes already (the fast path sends these without Django's wrappers)
        self.chunks = content
        #: callbacks to run once when the response ends; each is taken off the list as it runs. (The
        #: fast path runs them itself: close() would also send request_finished, and it sent no
        #: request_started.)
        self.on_close = list(on_close or [])

    def close(self) -> None:
        while self.on_close:
            self.on_close.pop(0)()
        super().close()


def _response(
    content: AsyncIterator[bytes],
    *,
    request: HttpRequest | None,
    headers: dict | None,
    on_close: list | None = None,
) -> StreamingHttpResponse:
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


async def release_request_thread() -> None:
    """Give back the thread and database connections Django holds for this request.

    Django's ASGI handler gives each request a ThreadSensitiveContext: a thread of its own for sync
    code (request_started's close_old_connections, the async ORM), kept until the response ends. For
    a stream that is one idle OS thread, and maybe an open database connection, per open stream. We
    close this thread's connections in it, then shut the thread down; any later sync call in the
    request (response.close() and request_finished at the end) gets a fresh thread from asgiref, which
    the context shuts down as usual. Relies on asgiref internals; if they change, we keep the thread.
    """
    from asgiref.sync import SyncToAsync, sync_to_async
    from django.db import connections

    context = SyncToAsync.thread_sensitive_context.get(None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None or executors.get(context) is None:
        return
    await sync_to_async(connections.close_all)()
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


async def _guarded(
    body: AsyncIterator[bytes],
    retry: int | None,
    run_id: str | None = None,
    release_thread: bool = True,
    greet: bool = True,
) -> AsyncIterator[bytes]:
    if greet:  # (run streams send their retry hint themselves, with their first events)
        yield sse.retry(conf.get("RETRY_MILLISECONDS") if retry is None else retry)
    try:
        if release_thread:
            await release_request_thread()
        async for chunk in body:
            yield chunk
    except asyncio.CancelledError:
        raise
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
    cancelled mid-item.
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
    return _response(
        _guarded(
            _follow(run_id, after, executor, requested_at), None, run_id, release_thread=False, greet=False
        ),
        request=request,
        headers={"X-Run-Id": run_id},
        on_close=on_close,
    )


def archive_stream(
    run_id: str, first: list[LogEvent], *, request: HttpRequest | None = None, on_close: list | None = None
) -> StreamingHttpResponse:
    """The SSE response of a finished run replayed from the database archive: ``first`` (its first
    page of events), then the rest a page of READ_BATCH at a time, so memory does not grow with the run."""

    async def replay() -> AsyncIterator[bytes]:
        events = first
        while True:
            chunks = list(_chunks([e.wire for e in events]))  # one send per CHUNK_BYTES, not per event
            last_page = len(events) < READ_BATCH  # (a full page: the archive may have more)
            if last_page:
                chunks[-1] = sse.LastChunk(chunks[-1])
            for chunk in chunks:
                yield chunk
            if last_page:
                return
            from nexus_sse import store  # local: it imports models; sse_response must not

            events = await store.read_events(run_id, events[-1].seq)
            if not events:
                return

    return _response(
        _guarded(replay(), None, run_id), request=request, headers={"X-Run-Id": run_id}, on_close=on_close
    )


async def _follow(
    run_id: str, after: int, executor: str | None = None, requested_at: float | None = None
) -> AsyncIterator[bytes]:
    log = get_event_log()
    keepalive = conf.get("KEEPALIVE_SECONDS")
    max_lag = conf.get("SLOW_READER_MAX_LAG")
    current_run.set(run_id)
    shutdown.install()
    await log.add_subscriber(run_id)
    metrics.open_streams.inc()
    released = False
    ended = False
    # The retry hint goes out first, in the same write as the first events when they are there already
    # (a new run's start is): one write and one wake-up of the client fewer before its first event.
    greeting = sse.retry(conf.get("RETRY_MILLISECONDS"))
    # Slow-reader bookkeeping, updated per batch: how far behind the log's head the cursor was at the
    # last look (None: not known yet), and how long the reader has held us up since (blocked sends).
    lag: int | None = None
    held = 0.0
    floor = 0  # the oldest event the log held at the last look: older ones come from the archive
    try:
        last = None if log.shared else await log.last_event(run_id)
        if last is None or last.seq <= after:  # nothing to send yet: the hint goes alone, at once
            yield greeting
            greeting = b""
        cursor = after
        while True:
            # Most short runs end within IDLE_RELEASE_SECONDS; only a stream that goes quiet
            # longer than that pays for giving back its request thread.
            timeout = keepalive if released else min(keepalive, IDLE_RELEASE_SECONDS)
            from_archive = cursor + 1 < floor
            if not from_archive:
                events = await log.wait_after(run_id, cursor, timeout)
                if events and events[0].seq > cursor + 1:
                    # The log let the oldest events go (archived; Redis MAXLEN, the memory log's
                    # window): read them from the archive, a batch at a time, up to its oldest.
                    floor, from_archive = events[0].seq, True
            if from_archive:
                events = await _archived(run_id, cursor, floor)
                metrics.events_from_archive.inc(len(events))
            if shutdown.draining() and not (events and events[-1].terminal):
                # This process is stopping: hand over what we have, then tell the client to come
                # back (with its Last-Event-ID) in a moment, to another process.
                if events and events[0].seq == cursor + 1:  # (never skip what only the archive has)
                    for chunk in _chunks([e.wire for e in events]):
                        yield greeting + chunk
                        greeting = b""
                    metrics.events_delivered.inc(len(events))
                yield greeting + sse.retry(500) + sse.comment("server shutting down; reconnect")
                ended = True  # a clean hand-over, not a client disconnect
                return
            if not events:
                lag, held = 0, 0.0  # caught up
                if not released:
                    released = True
                    await release_request_thread()
                    if timeout < keepalive:
                        continue
                if log.shared and not executor:  # queued when we attached: has a worker taken it?
                    from nexus_sse import store  # local: it imports models; sse_response must not

                    executor = await store.executor_of(run_id)
                if log.shared and executor and not await log.executor_alive(executor):
                    from nexus_sse.runs import mark_interrupted  # local: runs imports streaming's peers

                    await mark_interrupted(run_id)  # appends the final error event to the log
                    continue
                yield greeting + sse.KEEPALIVE
                greeting = b""
                continue
            if from_archive or len(events) >= READ_BATCH:
                # Only a full batch means we may be behind (looked at per batch, never per event).
                head = await log.last_event(run_id)
                behind = (head.seq if head else events[-1].seq) - cursor
                if max_lag is not None and _too_slow(behind, lag, held, max_lag):
                    yield greeting + sse.retry(conf.get("RETRY_MILLISECONDS")) + SLOW_READER
                    metrics.slow_readers.inc()
                    ended = True
                    return
                lag, held = behind, 0.0
            else:
                lag, held = 0, 0.0  # this batch reaches the head
            cursor = events[-1].seq
            if requested_at is not None:
                metrics.time_to_first_event.observe(time.perf_counter() - requested_at)
                requested_at = None
            metrics.events_delivered.inc(len(events))
            chunks = list(_chunks([e.wire for e in events]))
            chunks[0], greeting = greeting + chunks[0], b""
            ended = events[-1].terminal
            if ended:  # the terminal event's chunk ends the body (the fast path sends it as the last write)
                chunks[-1] = sse.LastChunk(chunks[-1])
            for chunk in chunks:
                sent = time.monotonic()
                yield chunk  # returns once the server took the chunk: later while the reader lags
                held += time.monotonic() - sent
            if ended:
                return
    finally:
        metrics.open_streams.dec()
        if not ended:
            metrics.disconnects.inc()
        await log.remove_subscriber(run_id)


#: the reader held a stream up when its sends blocked this long in all since the last look
HELD_SECONDS = 0.005


def _too_slow(behind: int, lag: int | None, held: float, max_lag: int) -> bool:
    """Whether a stream ``behind`` events behind the head should end for a slow reader.

    Only when it is more than ``max_lag`` behind, *further* behind than at the last look, and its
    sends waited on the reader meanwhile. So a stream that starts far behind (a resume) and catches
    up, or a fast reader handed a sudden burst of events, is never cut off; under a server whose
    ``send`` never waits (daphne) nothing is, as the reader's backlog piles up there instead.
    """
    return behind > max_lag and lag is not None and behind > lag and held >= HELD_SECONDS


def _chunks(wires: list[bytes], limit: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Join wire bytes into chunks of at most ``limit`` bytes (an event bigger than that goes alone)."""
    if sum(map(len, wires)) <= limit:  # the usual case, a live batch: one join, no Python loop
        yield b"".join(wires)
        return
    batch: list[bytes] = []
    size = 0
    for wire in wires:
        if size + len(wire) > limit and batch:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(wire)
        size += len(wire)
    if batch:
        yield b"".join(batch)


async def _archived(run_id: str, after: int, before: int) -> list[LogEvent]:
    """Up to READ_BATCH archived events after ``after`` (and before ``before``), without a gap."""
    from nexus_sse import store  # local: it imports models; sse_response must not

    events = await store.read_events(run_id, after, before)
    for i, event in enumerate(events):
        if event.seq != after + i + 1:
            del events[i:]
            break
    if not events:  # neither the log nor the archive has the next event: never skip it silently
        raise RuntimeError(f"run {run_id}: event {after + 1} is neither in the event log nor archived")
    return events
