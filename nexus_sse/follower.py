"""The body of a run's event stream: one :class:`RunFollower` per client.

A follower is in one of these states, decided per batch in :meth:`RunFollower.stream`:

* **live**: waiting on the event log after its cursor, sending each batch as it comes;
* **catching up**: the log let the oldest events go (Redis ``MAXLEN``, the memory log's window),
  so they are read from the database archive, a batch at a time, up to the log's oldest;
* **idle**: nothing new for a while: give back the request's thread once, make sure the run's
  executor still lives (else mark the run interrupted, which appends its final ``error`` event),
  and send a keepalive;
* **too slow**: the reader fell ever further behind while holding up our sends: end with a
  ``retry:`` hint and ``:slow reader`` (it resumes with Last-Event-ID);
* **draining**: this process got SIGTERM: hand over what we have and tell the client to come back.

The SIGTERM handler is installed when the first stream starts (:meth:`RunFollower.start`). It must
be installed from the server's main thread, with its loop running and after the server installed
its own handler (which ours then calls): not at import time, nor in ``AppConfig.ready`` nor in the
ASGI application's constructor (daphne installs its handlers later, when its reactor starts), and
not from a lifespan event (daphne sends none, nor does ``uvicorn --lifespan off``). The first
request would do, but the plain Django path has no hook of ours before the view, so that would
need two call sites; the first stream is one, on both paths, and draining exists for streams.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from nexus_sse import conf, metrics, shutdown, sse
from nexus_sse.eventlog import BaseEventLog, LogEvent, get_event_log
from nexus_sse.eventlog.base import READ_BATCH
from nexus_sse.logs import current_run

#: a run stream idle this long gives back its request thread (see release_request_thread)
IDLE_RELEASE_SECONDS = 0.05
#: largest chunk a run stream yields (one bigger event goes alone). A backlog goes out in pieces, each
#: awaiting the server's ``send``: uvicorn makes that wait while its transport buffer is above its
#: 64 KiB high-water mark, so a slow reader holds at most about two such pieces in the server.
CHUNK_BYTES = 64 * 1024
#: the comment that ends a stream whose reader fell too far behind (after a ``retry:`` line)
SLOW_READER = sse.comment("slow reader; reconnect with Last-Event-ID")
#: what ends a stream handed over on SIGTERM: come back soon (to another process)
HAND_OVER = sse.retry(500) + sse.comment("server shutting down; reconnect")
#: the reader held a stream up when its sends blocked this long in all since the last look
HELD_SECONDS = 0.005


class RunFollower:
    """Stream one run's events after a cursor to one client, to the run's end.

    ``executor`` (the run's executing process) lets an idle stream notice that it died.
    ``requested_at`` (``time.perf_counter()`` of the request) times the first event.
    """

    __slots__ = (
        "cursor",
        "ended",
        "executor",
        "floor",
        "greeting",
        "held",
        "keepalive",
        "lag",
        "log",
        "max_lag",
        "released",
        "requested_at",
        "retry",
        "run_id",
        "timeout",
    )
    log: BaseEventLog
    keepalive: float
    #: how long to wait on the log before the stream counts as idle
    timeout: float
    max_lag: int | None
    retry: int
    #: the ``retry:`` hint, until it is sent (then empty)
    greeting: bytes

    def __init__(
        self, run_id: str, after: int, executor: str | None = None, requested_at: float | None = None
    ) -> None:
        self.run_id = run_id
        #: the last event sent (its seq)
        self.cursor = after
        self.executor = executor
        self.requested_at = requested_at
        #: the oldest event the log held at the last look: older ones come from the archive
        self.floor = 0
        # Slow-reader bookkeeping, updated per batch: how far behind the log's head the cursor was at
        # the last look (None: not known yet), and how long the reader held us up since (blocked sends).
        self.lag: int | None = None
        self.held = 0.0
        self.released = False
        #: whether the stream ended on its own (the run's end, a hand-over, a cut-off): not a disconnect
        self.ended = False

    async def start(self) -> BaseEventLog:
        """Read the settings, install the SIGTERM handler (the first stream does), subscribe."""
        log = self.log = get_event_log()
        self.keepalive = conf.get("KEEPALIVE_SECONDS")
        # Most short runs end within IDLE_RELEASE_SECONDS; only a stream that goes quiet
        # longer than that pays for giving back its request thread.
        self.timeout = min(self.keepalive, IDLE_RELEASE_SECONDS)
        self.max_lag = conf.get("SLOW_READER_MAX_LAG")
        self.retry = conf.get("RETRY_MILLISECONDS")
        # The retry hint goes out first, in the same write as the first events when they are there
        # already (a new run's start is): one write and one wake-up of the client fewer before them.
        self.greeting = sse.retry(self.retry)
        current_run.set(self.run_id)
        shutdown.install()
        await log.add_subscriber(self.run_id)
        metrics.open_streams.inc()
        return log

    async def stream(self) -> AsyncIterator[bytes]:
        """The response body: the ``retry:`` greeting, then the run's events after the cursor.

        The per-batch path (a wait on the log, a live batch sent) is written out here rather than
        in methods: it is the hottest loop of the product, and each method would be one more call
        or coroutine per batch. The rarer states have methods of their own."""
        log = await self.start()
        run_id = self.run_id
        try:
            last = None if log.shared else await log.last_event(run_id)
            if last is None or last.seq <= self.cursor:  # nothing to send yet: the hint goes alone
                yield self.greeting
                self.greeting = b""
            while not self.ended:
                cursor = self.cursor
                if cursor + 1 < self.floor:
                    events = await self.catch_up()
                else:
                    events = await log.wait_after(run_id, cursor, self.timeout)
                    if events and events[0].seq > cursor + 1:  # the log let the oldest events go
                        self.floor = events[0].seq
                        events = await self.catch_up()
                if not events or (shutdown.draining() and not events[-1].terminal):
                    async for chunk in self.pause(events):
                        yield chunk
                    continue
                if len(events) < READ_BATCH and events[-1].seq >= self.floor:
                    self.lag, self.held = 0, 0.0  # a live batch, up to the head
                elif await self.too_slow(events):
                    yield self.greeting + sse.retry(self.retry) + SLOW_READER
                    metrics.slow_readers.inc()
                    self.ended = True
                    return
                for chunk in self.frames(events):
                    sent = time.monotonic()
                    yield chunk  # returns once the server took the chunk: later while the reader lags
                    self.held += time.monotonic() - sent
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Count the stream's end and unsubscribe."""
        metrics.open_streams.dec()
        if not self.ended:
            metrics.disconnects.inc()
        await self.log.remove_subscriber(self.run_id)

    def frames(self, events: list[LogEvent]) -> list[bytes]:
        """Take in a batch about to go out (cursor, metrics, whether it ends the stream) and return
        its writes: chunks of at most CHUNK_BYTES, the greeting in the first; the terminal event's
        chunk is a ``LastChunk`` (it ends the body: the fast path's last write)."""
        self.cursor = events[-1].seq
        if self.requested_at is not None:
            metrics.time_to_first_event.observe(time.perf_counter() - self.requested_at)
            self.requested_at = None
        metrics.events_delivered.inc(len(events))
        chunks = _chunks([e.wire for e in events])
        chunks[0], self.greeting = self.greeting + chunks[0], b""
        self.ended = events[-1].terminal
        if self.ended:
            chunks[-1] = sse.LastChunk(chunks[-1])
        return chunks

    async def catch_up(self) -> list[LogEvent]:
        """The next batch from the archive, up to the log's oldest event (never with a gap)."""
        after = self.cursor
        events = await read_events(self.run_id, after, self.floor)
        for i, event in enumerate(events):
            if event.seq != after + i + 1:
                del events[i:]
                break
        if not events:  # neither the log nor the archive has the next event: never skip it silently
            raise RuntimeError(
                f"run {self.run_id}: event {after + 1} is neither in the event log nor archived"
            )
        metrics.events_from_archive.inc(len(events))
        return events

    async def too_slow(self, events: list[LogEvent]) -> bool:
        """Whether to cut a reader off after this batch (only a full one or one from the archive
        means we may be behind: looked at per batch, never per event)."""
        head = await self.log.last_event(self.run_id)
        behind = (head.seq if head else events[-1].seq) - self.cursor
        if self.max_lag is not None and _too_slow(behind, self.lag, self.held, self.max_lag):
            return True
        self.lag, self.held = behind, 0.0
        return False

    async def pause(self, events: list[LogEvent]) -> AsyncIterator[bytes]:
        """The writes when no batch goes out as usual: ``events`` is empty (idle), or this process
        is draining and they do not end the run."""
        if not shutdown.draining():
            chunk = await self.idle()
            if chunk:
                yield chunk
            return
        # Hand over what we have, then tell the client to come back (with its Last-Event-ID) in a
        # moment, to another process.
        if events and events[0].seq == self.cursor + 1:  # (never skip what only the archive has)
            for chunk in _chunks([e.wire for e in events]):
                yield self.greeting + chunk
                self.greeting = b""
            metrics.events_delivered.inc(len(events))
        yield self.greeting + HAND_OVER
        self.ended = True  # a clean hand-over, not a client disconnect

    async def idle(self) -> bytes:
        """What to send after a quiet wait: a keepalive, or nothing while we release the request's
        thread or end a run whose executor died (the log then holds its final event)."""
        self.lag, self.held = 0, 0.0  # caught up
        if not self.released:
            self.released = True
            await release_request_thread()
            waited, self.timeout = self.timeout, self.keepalive
            if waited < self.keepalive:  # only IDLE_RELEASE_SECONDS: no keepalive due yet
                return b""
        if await self.executor_gone():
            from nexus_sse.runs import mark_interrupted  # local: see the archive reads below

            await mark_interrupted(self.run_id)  # appends the final error event to the log
            return b""
        chunk, self.greeting = self.greeting + sse.KEEPALIVE, b""
        return chunk

    async def executor_gone(self) -> bool:
        """Whether the process executing the run died (known with a shared log only)."""
        if not self.log.shared:
            return False  # this process executes it
        if not self.executor:  # queued when we attached: has a worker taken it?
            self.executor = await executor_of(self.run_id)
        if not self.executor:
            return False  # still queued
        return not await self.log.executor_alive(self.executor)


async def replay_archive(run_id: str, first: list[LogEvent]) -> AsyncIterator[bytes]:
    """A finished run's events from the archive: ``first`` (its first page), then a page of READ_BATCH
    at a time; one write per CHUNK_BYTES (not per event), the last one a ``LastChunk``."""
    events = first
    while True:
        chunks = _chunks([e.wire for e in events])
        last_page = len(events) < READ_BATCH  # (a full page: the archive may have more)
        if last_page:
            chunks[-1] = sse.LastChunk(chunks[-1])
        for chunk in chunks:
            yield chunk
        if last_page:
            return
        events = await read_events(run_id, events[-1].seq)
        if not events:
            return


def _too_slow(behind: int, lag: int | None, held: float, max_lag: int) -> bool:
    """Whether a stream ``behind`` events behind the head should end for a slow reader.

    Only when it is more than ``max_lag`` behind, *further* behind than at the last look, and its
    sends waited on the reader meanwhile. So a stream that starts far behind (a resume) and catches
    up, or a fast reader handed a sudden burst of events, is never cut off; under a server whose
    ``send`` never waits (daphne) nothing is, as the reader's backlog piles up there instead.
    """
    return behind > max_lag and lag is not None and behind > lag and held >= HELD_SECONDS


def _chunks(wires: list[bytes], limit: int = CHUNK_BYTES) -> list[bytes]:
    """Join wire bytes into chunks of at most ``limit`` bytes (an event bigger than that goes alone)."""
    if sum(map(len, wires)) <= limit:  # the usual case, a live batch: one join, no Python loop
        return [b"".join(wires)]
    chunks: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for wire in wires:
        if size + len(wire) > limit and batch:
            chunks.append(b"".join(batch))
            batch, size = [], 0
        batch.append(wire)
        size += len(wire)
    if batch:
        chunks.append(b"".join(batch))
    return chunks


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
    executors: Any = getattr(SyncToAsync, "context_to_thread_executor", None)
    if context is None or executors is None or executors.get(context) is None:
        return
    await sync_to_async(connections.close_all)()
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


# --- The archive reads of a stream: store.py owns them. ---
# (Imported here, not at the top: nexus_sse.asgi imports this module before Django's app registry is
# ready, and store imports the models.)


async def read_events(run_id: str, after: int, before: int | None = None) -> list[LogEvent]:
    """Up to READ_BATCH archived events of a run after ``after`` (and before ``before``), in order."""
    from nexus_sse import store

    return await store.read_events(run_id, after, before)


async def executor_of(run_id: str) -> str | None:
    """The process executing a run, as the database has it (None: not claimed yet)."""
    from nexus_sse import store

    return await store.executor_of(run_id)
