"""The executor of one run: emits its events, archives them in batches, records how it ended.

Events go to the event log first (streams read them from there) and are archived to RunEvent rows
in batches. The terminal event is archived together with the Run's final status in one transaction
*before* it is appended to the log, so a client that has seen ``complete`` always finds the run
completed in the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from nexus_sse import conf, metrics, sse, store
from nexus_sse.enums import EventType, RunMode
from nexus_sse.eventlog import LogEvent, get_event_log
from nexus_sse.exceptions import (
    InternalError,
    NexusError,
    NodeError,
    RunCancelledError,
    RunTimeoutError,
)
from nexus_sse.logs import current_run
from nexus_sse.models import Run, Workflow
from nexus_sse.workflows.builder import WorkflowGraph
from nexus_sse.workflows.runtime import run_graph

logger = logging.getLogger("nexus_sse.runs")

#: a run lets the event loop run its other tasks at least once every this many events
YIELD_EVERY = 64
#: a run this many ARCHIVE_BATCH_SIZE batches ahead of its archive waits for the archive to catch up:
#: the event log can let go of an event only once it is archived, so without this a node emitting in
#: a tight loop faster than the database writes would hold its whole output in memory
ARCHIVE_BACKLOG_BATCHES = 4
#: (a plain str: compared with every event's name, which nodes give as plain strs)
TOKEN = EventType.TOKEN.value


class PublicError(InternalError):
    """An internal error whose message nexus_sse wrote itself: clients see it even without DEBUG."""

    public = True


class RunInterrupted(PublicError):
    """The run's executor died (a crash, a restart): the run ends failed, marked ``interrupted``."""

    default_message = "interrupted"


def public_message(error: NexusError) -> str:
    """The message clients see: node internals only when EXPOSE_ERRORS (default: DEBUG)."""
    if (
        isinstance(error, (NodeError, InternalError))
        and not getattr(error, "public", False)
        and not conf.expose_errors()
    ):
        node = error.extra.get("node")
        return f"Node {node!r} failed." if node else error.default_message
    return error.message


def error_data(error: NexusError, run_id: str | None = None) -> dict[str, Any]:
    """The data of the ``error`` event that ends a run (or a stream) with ``error``."""
    data: dict[str, Any] = {"error": public_message(error), "error_type": error.error_type}
    if isinstance(error, NodeError) and error.extra.get("node"):
        data["node"] = error.extra["node"]
    if isinstance(error, RunInterrupted):
        data["interrupted"] = True  # what a resume decides on: the message is only for people
    if run_id:
        data["run_id"] = run_id
    data["timestamp"] = time.time()
    return data


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How a run ended: its final status, terminal event and result."""

    status: str
    event: str
    data: dict[str, Any]
    elapsed: float
    result: Any = None
    outputs: Any = None

    def fields(self) -> dict[str, Any]:
        """The Run fields that record this end."""
        return {
            "status": self.status,
            "result": self.result,
            "outputs": self.outputs,
            "error": self.data.get("error", ""),
            "error_type": self.data.get("error_type", ""),
            "finished_at": timezone.now(),
            "execution_time": self.elapsed,
        }


class Executor:
    """Run one workflow run: emit its events, archive them, record how it ended."""

    def __init__(self, run: Run, graph: WorkflowGraph, workflow: Workflow, persisted: bool = True) -> None:
        self.run = run
        #: whether the Run row exists yet (with the in-memory log it is written with the first batch)
        self.persisted = persisted
        self.run_id = str(run.pk)
        self.graph = graph
        self.workflow = workflow
        self.log = get_event_log()
        self.seq = 0
        #: one append at a time where an append suspends (see BaseEventLog.append_is_immediate):
        #: concurrent nodes would otherwise both append seq + 1
        self.serial = None if self.log.append_is_immediate else asyncio.Lock()
        self.pending: list[LogEvent] = []
        self.flush_task: asyncio.Future | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.cancel_reason: str | None = None
        self.task: asyncio.Task | None = None
        self.idle = 0.0  # seconds without a subscriber, counted by the watchdog
        self.watched = True

    def stamp(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        data = {**data, "run_id": self.run_id}
        if event != TOKEN:  # tokens are many and small; their order is their time
            data["timestamp"] = time.time()
        return data

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        data = self.stamp(event, data)
        if self.serial is None:  # (no await between reading self.seq and the append taking it)
            item = await self.log.append(self.run_id, event, data, seq=self.seq + 1)
            self.seq = item.seq
            self.pending.append(item)
        else:
            async with self.serial:
                item = await self.log.append(self.run_id, event, data, seq=self.seq + 1)
                self.seq = item.seq
                self.pending.append(item)
        metrics.events_appended.inc()
        if self.seq % YIELD_EVERY == 0:
            # A node that emits in a tight loop (tokens from a buffer, say) would otherwise hold the
            # event loop for its whole burst: no stream could send and no archive batch be written
            # (so the log could not let go of any event) until it ended.
            await asyncio.sleep(0)
        batch_size = conf.get("ARCHIVE_BATCH_SIZE")
        if len(self.pending) >= batch_size:
            self.start_flush()
            if len(self.pending) >= batch_size * ARCHIVE_BACKLOG_BATCHES and self.flush_task is not None:
                await asyncio.shield(self.flush_task)  # (a flush that fails puts its batch back: no loss)
        elif self.flush_timer is None:
            # Archive within ARCHIVE_INTERVAL_SECONDS even if the run then goes quiet, so a
            # crash loses at most that much history.
            self.flush_timer = asyncio.get_running_loop().call_later(
                conf.get("ARCHIVE_INTERVAL_SECONDS"), self.start_flush
            )

    def start_flush(self) -> None:
        self.stop_timer()
        if self.pending and (self.flush_task is None or self.flush_task.done()):
            self.flush_task = asyncio.ensure_future(self.flush(), loop=asyncio.get_running_loop())
            self.flush_task.add_done_callback(self._flushed)

    def stop_timer(self) -> None:
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None

    def _flushed(self, task: asyncio.Future) -> None:
        if self.flush_task is task:
            self.flush_task = None  # do not keep a finished task per idle run
        if self.pending and self.flush_timer is None and not (self.task and self.task.done()):
            # events arrived while this flush ran: archive them too, even if the run now goes quiet
            self.flush_timer = asyncio.get_running_loop().call_later(
                conf.get("ARCHIVE_INTERVAL_SECONDS"), self.start_flush
            )

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            try:
                if self.persisted:
                    await store.append_events(self.run_id, batch)
                else:
                    await store.create_run_with_events(self.run, batch)
                    self.persisted = True
            except Exception:
                logger.exception(
                    "run %s: archiving %d events failed; retrying at the end", self.run_id, len(batch)
                )
                self.pending[:0] = batch
            else:
                # Flushes run one at a time and a failed batch goes back in front of the next one,
                # so everything up to this batch's last event is in the database now.
                await self.log.archived(self.run_id, batch[-1].seq)

    async def execute(self) -> None:
        current_run.set(self.run_id)
        started = time.monotonic()
        status, result, outputs = Run.Status.COMPLETED, None, None
        error: NexusError | None = None
        try:
            async with asyncio.timeout(conf.get("RUN_TIMEOUT_SECONDS")):
                result, outputs = await run_graph(self.graph, self.run.inputs, self.emit, self.run_id)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.cancel_reason is None or task is None:
                raise  # the process is shutting down: recovery marks the run interrupted
            task.uncancel()
            status, error = Run.Status.CANCELLED, RunCancelledError(self.cancel_reason)
        except TimeoutError:
            status, error = Run.Status.FAILED, RunTimeoutError()
        except NexusError as exc:
            status, error = Run.Status.FAILED, exc
        except Exception as exc:  # a bug outside any node
            logger.exception("run %s failed", self.run_id)
            status, error = Run.Status.FAILED, InternalError(f"{type(exc).__name__}: {exc}")
        finally:
            self.watched = False
        elapsed = round(time.monotonic() - started, 6)
        metrics.run_duration.observe(elapsed)
        metrics.runs_finished.labels(status=status).inc()
        if error is not None:
            end = RunEnd(status, EventType.ERROR, error_data(error, self.run_id), elapsed)
        else:
            data = {"result": result, "outputs": outputs, "execution_time": elapsed}
            complete = EventType.COMPLETE
            end = RunEnd(status, complete, self.stamp(complete, data), elapsed, result, outputs)
        await self.finish(end)

    async def finish(self, end: RunEnd) -> None:
        """Record the end, then tell the streams; older events may still be on their way to the
        archive (a long token stream writes faster than a database): they follow in the background,
        while the log still holds them for any replay."""
        self.stop_timer()
        if end.event == EventType.ERROR and self.serial is not None:
            await self.take_in_cut_short_append()
        fields = end.fields()
        event, data = end.event, end.data
        terminal = LogEvent(self.run_id, self.seq + 1, event, sse.dumps(data))
        if not self.persisted and self.flush_task is not None:
            await asyncio.shield(self.flush_task)  # it may be writing the Run row right now
        backlog, self.pending = self.pending, []
        small = len(backlog) <= conf.get("ARCHIVE_BATCH_SIZE")
        archived_all = await self.record_end(fields, [*backlog, terminal] if small else [terminal])
        if not archived_all and event == EventType.COMPLETE:
            # The stream must still end: the failure is logged; tell the client.
            event, data = (
                EventType.ERROR,
                error_data(PublicError("Could not record the result."), self.run_id),
            )
        try:
            await self.log.append(self.run_id, event, data, seq=terminal.seq)
            metrics.events_appended.inc()
        except Exception:
            logger.exception("run %s: the event log refused the terminal event", self.run_id)
        if self.flush_task is not None:
            await asyncio.shield(self.flush_task)
        if not small:
            try:
                await store.append_events(self.run_id, backlog)
            except Exception:
                archived_all = False
                logger.exception("run %s: archiving the last %d events failed", self.run_id, len(backlog))
        if archived_all and not self.pending:  # (a failed earlier flush puts its batch back in pending)
            await self.log.archived(self.run_id, terminal.seq)
        try:
            # Only now the retention clock starts: until the backlog is in the database, the log is
            # the only copy of it (a short retention would otherwise lose events from a replay).
            await self.log.finished(self.run_id)
        except Exception:
            logger.exception("run %s: the event log could not mark the run finished", self.run_id)

    async def take_in_cut_short_append(self) -> None:
        """A cancellation (or a timeout) that stopped the run during an append may have left that
        event in the log without our knowing: take it in, so the terminal event comes after it
        (else the log would refuse it, and every stream of the run would wait for an end forever)."""
        try:
            landed = [e for e in await self.log.read_after(self.run_id, self.seq) if not e.terminal]
        except Exception:
            logger.exception("run %s: could not look for an append cut short", self.run_id)
            return
        if landed:
            self.pending.extend(landed)
            self.seq = landed[-1].seq

    async def record_end(self, fields: dict[str, Any], rows: list[LogEvent]) -> bool:
        """One small transaction: the run's end and its terminal event (+ a short backlog). False if
        it failed (logged: the process goes on)."""
        try:
            if self.persisted:
                await store.finish_run(self.run_id, rows, fields)
            else:
                for name, value in fields.items():
                    setattr(self.run, name, value)
                await store.create_run_with_events(self.run, rows)
                self.persisted = True
        except Exception:
            logger.exception("run %s: recording the end failed", self.run_id)
            return False
        return True

    async def check(self, step: float) -> bool:
        """One watchdog look (every ``step`` s): cancel when another process asks (shared logs), or
        once nobody has streamed the run for ORPHAN_SECONDS (not async runs). True: stop watching."""
        try:
            if self.log.shared and await self.log.cancel_requested(self.run_id):
                self.cancel("Cancelled by request.")
                return True
            if self.run.mode == RunMode.ASYNC:
                return False
            self.idle = self.idle + step if await self.log.subscriber_count(self.run_id) == 0 else 0.0
        except Exception as exc:  # the log is unreachable: keep running, look again next step
            logger.warning("run %s: watchdog cannot reach the event log: %s", self.run_id, exc)
            return False
        limit = conf.get("ORPHAN_SECONDS")
        if self.idle >= limit:
            logger.info("run %s: no subscriber for %.1fs, cancelling", self.run_id, self.idle)
            self.cancel(f"Cancelled: nobody was listening for {limit:g}s.")
            return True
        return False

    def cancel(self, reason: str) -> None:
        if self.task and not self.task.done() and self.cancel_reason is None:
            self.cancel_reason = reason
            self.task.cancel()
