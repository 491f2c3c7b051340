"""The event-log interface every backend implements."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from abc import ABC, abstractmethod
from typing import Any

from nexus_sse.enums import TERMINAL_EVENTS

#: most events one ``wait_after`` returns: a reader far behind gets its backlog in batches, so
#: neither the log nor the stream ever copies a whole long run at once
READ_BATCH = 1000

#: Identifies this process among executors; runs record it so a restart can find orphaned runs.
EXECUTOR_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LogEvent:
    """One event of a run: its ``seq`` (from 1), name and JSON data, with its wire bytes built once.

    Once the wire bytes exist, the JSON text is not kept beside them: it is their ``data:`` field, and
    a long run's log would otherwise hold every event twice."""

    __slots__ = ("_data_json", "_wire", "event", "run_id", "seq")

    def __init__(self, run_id: str, seq: int, event: str, data_json: str) -> None:
        self.run_id = run_id
        self.seq = seq
        self.event = event
        self._data_json: str | None = data_json
        self._wire: bytes | None = None

    @property
    def id(self) -> str:
        return f"{self.run_id}:{self.seq}"

    def _head(self) -> str:
        return f"id: {self.run_id}:{self.seq}\nevent: {self.event}\ndata: "

    @property
    def data_json(self) -> str:
        if self._data_json is not None:
            return self._data_json
        assert self._wire is not None
        # (ids and event names are ASCII: the head's length in characters is its length in bytes)
        return self._wire[len(self._head()) : -2].decode()

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.data_json)

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS

    @property
    def wire(self) -> bytes:
        """The event as SSE bytes (built once, shared by every subscriber)."""
        if self._wire is None:
            # No sse.encode checks: event names come from the executor's fixed set and data_json is
            # json.dumps output, which never holds a raw line break.
            self._wire = f"{self._head()}{self._data_json}\n\n".encode()
            self._data_json = None
        return self._wire

    def __repr__(self) -> str:
        return f"LogEvent({self.id} {self.event})"


class SequenceConflict(RuntimeError):
    """An append the log refused: ``seq`` is not the run's next one, or the run already ended.

    A bug in the caller (a run has one writer, which knows its next seq), never a failure of the
    log's server: every backend raises this, not ``EventLogUnavailable``."""


class Waiters(list[asyncio.Future[bool]]):
    """Futures parked until the next event: the wait primitive of the backends' ``wait_after``.

    A timer resolves a parked future at its timeout, rather than ``asyncio.wait()`` or
    ``asyncio.timeout()`` around it: the same wake-up for less work (docs/performance.md).
    A list, so ``if waiters:`` costs no call, and plain methods, so a wait costs no extra await."""

    __slots__ = ()

    def park(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> tuple[asyncio.Future[bool], asyncio.TimerHandle | None]:
        """A future to await, resolved by :meth:`wake` or after ``timeout`` seconds (None: never)."""
        fut = loop.create_future()
        self.append(fut)
        return fut, (loop.call_later(timeout, _wake, fut) if timeout is not None else None)

    def unpark(self, fut: asyncio.Future[bool], timer: asyncio.TimerHandle | None) -> None:
        """Undo :meth:`park` once the wait is over (woken, timed out or cancelled)."""
        if timer is not None:
            timer.cancel()
        if fut.done() and not fut.cancelled() and fut.result():
            # Woken: wake() took it off the list already. (Looking for it there would scan every
            # waiter parked since, for each waiter: quadratic in the subscribers of a run.)
            return
        if not fut.done():
            fut.cancel()
        if fut in self:
            self.remove(fut)

    def wake(self) -> None:
        """Resolve every parked future."""
        futures = self[:]
        self.clear()
        for fut in futures:
            if not fut.done():
                fut.set_result(True)


def _wake(fut: asyncio.Future[bool]) -> None:
    """A parked future's timeout: resolved False, and still on the list (unpark takes it off)."""
    if not fut.done():
        fut.set_result(False)


class BaseEventLog(ABC):
    """Append-only, per-run event log with blocking reads.

    ``append`` assigns ``seq`` (1, 2, ...). ``wait_after`` returns the events after a seq, blocking up
    to ``timeout`` seconds for the first one: the one primitive both replay and live following use.
    Backends also count subscribers (for orphan detection) and say which executors are alive.
    The methods without ``@abstractmethod`` are optional hooks: their defaults do nothing.
    """

    #: whether several processes can share this log (Redis: yes; memory: no)
    shared: bool = False
    #: whether ``append`` returns without suspending (memory: yes; Redis: no, it is a round trip). A
    #: run's executor serialises the appends of a log that suspends, so that concurrent nodes' events
    #: get their seqs in order, and checks after a cancellation whether an append cut short landed.
    append_is_immediate: bool = False

    @abstractmethod
    async def append(self, run_id: str, event: str, data: dict[str, Any], seq: int | None = None) -> LogEvent:
        """Add an event after the run's last one and return it, with its seq.

        ``seq``: the caller, the run's one writer, may pass the seq it knows comes next (saves the
        backend a look-up). The event is in the log, visible to every reader of the log, once this
        returns. Appending after a terminal event is a caller's error.

        Raises :class:`SequenceConflict` if ``seq`` is not after the run's last event (every
        backend). The in-memory log also refuses a gap and an append after a terminal event; the
        Redis log refuses only what ``XADD`` refuses (an id not above the last), since checking more
        would cost server work on every event. ``EventLogUnavailable``: the log's server failed."""

    @abstractmethod
    async def read_after(self, run_id: str, seq: int) -> list[LogEvent]:
        """Events with seq > ``seq`` now in the log (empty if none or unknown run)."""

    @abstractmethod
    async def wait_after(
        self,
        run_id: str,
        seq: int,
        timeout: float | None,  # noqa: ASYNC109  (a timer, not asyncio.timeout: Waiters)
    ) -> list[LogEvent]:
        """Like ``read_after`` but wait up to ``timeout`` seconds (None: forever) for an event.

        Returns at most READ_BATCH events. The first may come after ``seq + 1`` when the log no
        longer holds older events (trimmed once archived): the caller reads those from the archive."""

    @abstractmethod
    async def last_event(self, run_id: str) -> LogEvent | None:
        """The newest event of the run (None if the log does not hold it: its history is in the
        database archive)."""

    @abstractmethod
    async def add_subscriber(self, run_id: str) -> None:
        """Count one more stream following the run (in this process)."""

    @abstractmethod
    async def remove_subscriber(self, run_id: str) -> None:
        """Count one stream fewer."""

    @abstractmethod
    async def subscriber_count(self, run_id: str) -> int:
        """Streams following the run, in every live process that shares the log."""

    @abstractmethod
    async def executor_alive(self, executor_id: str) -> bool:
        """Whether the executor that owns a run may still be running it."""

    async def request_cancel(self, run_id: str) -> bool:
        """Ask the process executing ``run_id`` to cancel it; False if this log cannot reach it."""
        return False

    async def cancel_requested(self, run_id: str) -> bool:
        """Whether another process asked to cancel ``run_id`` (polled by the executor's watchdog)."""
        return False

    async def finished(self, run_id: str) -> None:
        """Hook: the run ended; schedule its removal after the retention period."""
        return None

    async def archived(self, run_id: str, seq: int) -> None:
        """Hook: every event of the run up to ``seq`` is in the database archive; the log may let
        them go."""
        return None

    async def announce(self) -> None:
        """Hook: make this process known as alive *before* it takes a run (shared logs write a
        heartbeat)."""
        return None

    def wake_all(self) -> None:
        """Hook: make every waiting ``wait_after`` return now (shutdown); backends that cannot,
        time out."""
        return None

    async def ping(self) -> None:
        """Hook: raise if the log cannot be reached (readiness)."""
        return None

    async def close(self) -> None:
        """Hook: release connections and background tasks (the manager calls it when settings
        change)."""
        return None
