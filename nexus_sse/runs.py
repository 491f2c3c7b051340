"""Start, execute, cancel and recover runs. A run lives in its own task, never in a response.

Events go to the event log first (streams read them from there) and are archived to RunEvent
rows in batches. The terminal event is archived together with the Run's final status in one
transaction *before* it is appended to the log, so a client that has seen ``complete`` always
finds the run completed in the database.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import time
import uuid
from typing import Any

from django.utils import timezone

from nexus_sse import conf, db, metrics, sse, store
from nexus_sse.eventlog import LogEvent, get_event_log
from nexus_sse.eventlog.base import EXECUTOR_ID
from nexus_sse.exceptions import (
    EventLogUnavailable,
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

#: executors of the runs this process is executing, by run id (also keeps their tasks alive)
_executors: dict[str, Executor] = {}


#: a run lets the event loop run its other tasks at least once every this many events
YIELD_EVERY = 64
#: a run this many ARCHIVE_BATCH_SIZE batches ahead of its archive waits for the archive to catch up:
#: the event log can let go of an event only once it is archived, so without this a node emitting in
#: a tight loop faster than the database writes would hold its whole output in memory
ARCHIVE_BACKLOG_BATCHES = 4


class Executor:
    """Runs one workflow run: emits its events, archives them, records how it ended."""

    def __init__(self, run: Run, graph: WorkflowGraph, workflow: Workflow, persisted: bool = True) -> None:
        self.run = run
        #: whether the Run row exists yet (with the in-memory log it is written with the first batch)
        self.persisted = persisted
        self.run_id = str(run.pk)
        self.graph = graph
        self.workflow = workflow
        self.log = get_event_log()
        self.seq = 0
        self.pending: list[LogEvent] = []
        self.flush_task: asyncio.Future | None = None
        self.flush_timer: asyncio.TimerHandle | None = None
        self.cancel_reason: str | None = None
        self.task: asyncio.Task | None = None
        self.idle = 0.0  # seconds without a subscriber, counted by the watchdog
        self.watched = True

    def stamp(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        data = {**data, "run_id": self.run_id}
        if event != "token":  # tokens are many and small; their order is their time
            data["timestamp"] = time.time()
        return data

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        item = await self.log.append(self.run_id, event, self.stamp(event, data), seq=self.seq + 1)
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
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if self.pending and (self.flush_task is None or self.flush_task.done()):
            self.flush_task = asyncio.ensure_future(self.flush(), loop=asyncio.get_running_loop())
            self.flush_task.add_done_callback(self._flushed)

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
        status, result, outputs, error = Run.Status.COMPLETED, None, None, None
        try:
            async with asyncio.timeout(conf.get("RUN_TIMEOUT_SECONDS")):
                result, outputs = await run_graph(self.graph, self.run.inputs, self.emit, self.run_id)
        except asyncio.CancelledError:
            if self.cancel_reason is None:
                raise  # the process is shutting down: recovery marks the run interrupted
            asyncio.current_task().uncancel()
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
        if error is None:
            event, data = "complete", {"result": result, "outputs": outputs, "execution_time": elapsed}
        else:
            event, data = "error", {"error": public_message(error), "error_type": error.error_type}
            if isinstance(error, NodeError) and error.extra.get("node"):
                data["node"] = error.extra["node"]
        await self.finish(status, event, self.stamp(event, data), elapsed, result, outputs, error)

    async def finish(self, status, event, data, elapsed, result, outputs, error) -> None:
        """Record the end, then tell the streams; older events may still be on their way to the
        archive (a long token stream writes faster than a database): they follow in the background,
        while the log still holds them for any replay."""
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        terminal = LogEvent(self.run_id, self.seq + 1, event, sse.dumps(data))
        fields = {
            "status": status,
            "result": result,
            "outputs": outputs,
            "error": data.get("error", ""),
            "error_type": data.get("error_type", ""),
            "finished_at": timezone.now(),
            "execution_time": elapsed,
        }
        if not self.persisted and self.flush_task is not None:
            await asyncio.shield(self.flush_task)  # it may be writing the Run row right now
        backlog, self.pending = self.pending, []
        small = len(backlog) <= conf.get("ARCHIVE_BATCH_SIZE")
        rows = [*backlog, terminal] if small else [terminal]
        archived_all = True
        try:  # one small transaction: the run's end and its terminal event (+ a short backlog)
            if self.persisted:
                await store.finish_run(self.run_id, rows, fields)
            else:
                for name, value in fields.items():
                    setattr(self.run, name, value)
                await store.create_run_with_events(self.run, rows)
                self.persisted = True
        except Exception:
            # The stream must still end: log it, tell the client, keep the process alive.
            archived_all = False
            logger.exception("run %s: recording the end failed", self.run_id)
            if event == "complete":
                event, data = (
                    "error",
                    self.stamp(
                        "error", {"error": "Could not record the result.", "error_type": "InternalError"}
                    ),
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

    async def check(self, step: float) -> bool:
        """One watchdog look (every ``step`` s): cancel when another process asks (shared logs), or
        once nobody has streamed the run for ORPHAN_SECONDS (not async runs). True: stop watching."""
        try:
            if self.log.shared and await self.log.cancel_requested(self.run_id):
                self.cancel("Cancelled by request.")
                return True
            if self.run.mode == "async":
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


#: Run's columns in the order Model.__init__ takes them positionally (checked by new_run)
_RUN_FIELDS = (
    "id",
    "workflow_id",
    "workflow_version",
    "status",
    "mode",
    "inputs",
    "result",
    "outputs",
    "error",
    "error_type",
    "user_id",
    "executor",
    "created_at",
    "started_at",
    "finished_at",
    "execution_time",
)


@functools.cache
def _check_run_fields() -> None:
    actual = tuple(f.attname for f in Run._meta.concrete_fields)
    if actual != _RUN_FIELDS:
        raise RuntimeError(f"nexus_sse.runs._RUN_FIELDS is out of date: Run's fields are now {actual}")


_random = bytearray()
os.register_at_fork(after_in_child=_random.clear)  # a child must not reuse its parent's bytes

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_NOT_VERSION_OR_VARIANT = ~((0xF << 76) | (0x3 << 62))


def new_run_id() -> uuid.UUID:
    """A time-ordered (version 7, RFC 9562) UUID: the time in milliseconds, then 74 random bits.

    Time-ordered because run ids are the key of the two biggest tables' indexes: random (version 4)
    keys land on a random index page each, so every commit dirties a page per run (in this machine's
    benchmark, archive writes cost 40% more, and more as the tables grow); ordered ones share the last
    pages. 74 random bits still cannot be guessed; the id shows when the run was created, as the
    run's own JSON does. The random bytes come from os.urandom 4,000 at a time: each call lets go of
    the GIL for its system call, and getting it back while a database thread runs Python can take a
    whole switch interval (5 ms)."""
    if not _random:
        _random.extend(os.urandom(4000))
    value = int.from_bytes(_random[-10:])
    del _random[-10:]
    value |= (time.time_ns() // 1_000_000) << 80
    return uuid.UUID(int=(value & _NOT_VERSION_OR_VARIANT) | _VERSION_7 | _VARIANT_RFC)


def new_run(workflow: Workflow, mode: str, inputs: dict, user: Any = None) -> Run:
    """An unsaved Run starting now, executed by this process.

    Built with positional values: Model.__init__ with keywords costs four times as much, and this is
    on every execute request (the order is checked against the model once)."""
    _check_run_fields()
    now = timezone.now()
    run = Run(
        new_run_id(),
        workflow.pk,
        workflow.version,
        Run.Status.RUNNING,
        mode,
        inputs,
        None,
        None,
        "",
        "",
        user.pk if user is not None else None,
        EXECUTOR_ID,
        now,
        now,
        None,
        None,
    )
    Run.workflow.field.set_cached_value(run, workflow)  # run.workflow without a query, as Run(workflow=...)
    if user is not None:
        Run.user.field.set_cached_value(run, user)
    return run


async def start(
    workflow: Workflow, graph: WorkflowGraph, inputs: dict, *, user: Any = None, mode: str = "stream"
) -> Run:
    """Create the Run, append its ``start`` event, and execute it in a task of its own."""
    await recover_interrupted_once()
    run = new_run(workflow, mode, inputs, user if getattr(user, "is_authenticated", False) else None)
    log = get_event_log()
    if conf.get("EXECUTOR") == "tasks":
        return await _queue(run, workflow)
    # Written now when other processes may be asked about it at once (shared log), or when it runs in
    # the background (its status is looked up anywhere: API, admin). Otherwise with its first events.
    persist_now = log.shared or mode == "async"
    await log.announce()  # alive before the row names this process as the executor
    if persist_now:
        await store.create_run(run)
    executor = Executor(run, graph, workflow, persisted=persist_now)
    metrics.runs_started.labels(workflow=workflow.slug).inc()
    try:
        await executor.emit("start", {"workflow_id": workflow.slug, "version": workflow.version})
    except EventLogUnavailable as exc:  # the run never started: do not leave its row "running"
        if persist_now:
            await store.fail_run(str(run.pk), exc.message, exc.error_type)
        raise
    # A fresh context: the run must not inherit the request's ThreadSensitiveContext, whose thread
    # ends with the response (asgiref refuses calls from tasks that outlive it). Its database calls
    # go to asgiref's shared sync thread instead.
    executor.task = asyncio.create_task(
        executor.execute(), name=f"nexus_sse run {run.pk}", context=contextvars.Context()
    )
    _executors[executor.run_id] = executor
    executor.task.add_done_callback(lambda _: _executors.pop(executor.run_id, None))
    _ensure_watchdog()
    return run


async def _queue(run: Run, workflow: Workflow) -> Run:
    """Record the run as pending (no executor yet), append ``start``, and hand it to a worker."""
    from nexus_sse import worker

    run.status, run.executor = Run.Status.PENDING, ""
    data = {
        "workflow_id": workflow.slug,
        "version": workflow.version,
        "run_id": str(run.pk),
        "timestamp": time.time(),
    }
    await store.create_run_with_events(run, [LogEvent(str(run.pk), 1, "start", sse.dumps(data))])
    metrics.runs_started.labels(workflow=workflow.slug).inc()
    await get_event_log().append(str(run.pk), "start", data, seq=1)
    await db.call(worker.enqueue, str(run.pk))
    return run


async def execute_queued(run_id: str) -> None:
    """In a worker: claim a pending run and execute it to its end, continuing its event sequence."""
    from nexus_sse import registry

    await get_event_log().announce()  # alive before the row names this worker as the executor
    run = await store.claim_run(run_id)
    if run is None:
        return  # cancelled while queued, or another worker has it
    log = get_event_log()
    executor = Executor(run, registry.graph_for(run.workflow), run.workflow, persisted=True)
    last = await log.last_event(run_id)
    executor.seq = last.seq if last else 0
    executor.task = asyncio.current_task()
    _executors[run_id] = executor
    _ensure_watchdog()
    try:
        await executor.execute()
    finally:
        _executors.pop(run_id, None)


_watchdogs: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def _ensure_watchdog() -> None:
    """One watchdog task per event loop looks at every running executor (not a task per run)."""
    loop = asyncio.get_running_loop()
    task = _watchdogs.get(loop)
    if task is None or task.done():
        _watchdogs[loop] = loop.create_task(
            _watch_all(), name="nexus_sse watchdog", context=contextvars.Context()
        )


async def _watch_all() -> None:
    while _executors:
        step = max(0.02, min(1.0, conf.get("ORPHAN_SECONDS") / 5))
        await asyncio.sleep(step)
        for executor in list(_executors.values()):
            if executor.watched and await executor.check(step):
                executor.watched = False


async def cancel(run: Run) -> str:
    """Ask a run to stop. Returns the status to report: "cancelling" or the run's final status."""
    executor = _executors.get(str(run.pk))
    if executor is not None:
        executor.cancel("Cancelled by request.")
        return "cancelling"
    if run.finished:
        return run.status
    log = get_event_log()
    if run.status == Run.Status.PENDING and not run.executor:  # still queued: no worker has it yet
        if await store.cancel_queued_run(str(run.pk), "Cancelled by request.", "CancelledError"):
            data = {
                "error": "Cancelled by request.",
                "error_type": "CancelledError",
                "run_id": str(run.pk),
                "timestamp": time.time(),
            }
            last = await log.last_event(str(run.pk))
            seq = (last.seq if last else 0) + 1
            await store.append_events(str(run.pk), [LogEvent(str(run.pk), seq, "error", sse.dumps(data))])
            await log.append(str(run.pk), "error", data, seq=seq)
            await log.finished(str(run.pk))
            return Run.Status.CANCELLED
        run = await store.reload_run(run.pk)
    if not await log.executor_alive(run.executor):
        await mark_interrupted(run)
        return Run.Status.FAILED
    if await log.request_cancel(str(run.pk)):
        return "cancelling"
    raise InternalError("The run is executing in another process that cannot be reached.")


async def mark_interrupted(run: Run | str) -> bool:
    """Record that a run died with its executor: status failed, a final ``error`` event.

    With a shared log, events the dead process appended but never archived are archived now, and
    the error event goes to the log too, so every stream following the run ends.
    """
    run_id = str(getattr(run, "pk", run))
    log = get_event_log()
    last_archived = await store.last_archived(run_id)
    archived = last_archived.seq if last_archived else 0
    missing = [e for e in await log.read_after(run_id, archived) if not e.terminal] if log.shared else []
    seq = max([archived, *(e.seq for e in missing)]) + 1
    data = {"error": "interrupted", "error_type": "InternalError", "run_id": run_id, "timestamp": time.time()}
    error = LogEvent(run_id, seq, "error", sse.dumps(data))
    claimed = await store.interrupt_run(run_id, [*missing, error], data)
    if claimed and log.shared:
        try:
            await log.append(run_id, "error", data, seq=seq)
            await log.finished(run_id)
        except Exception:
            logger.exception("run %s: could not append its interruption to the log", run_id)
    return claimed


_recovered = False
#: the recovery under way: the first requests of a process share it rather than each run one
_recovering: asyncio.Future | None = None


async def recover_interrupted_once() -> None:
    """Once per process: fail every unfinished run whose executor is gone (a restart, a crash)."""
    global _recovered, _recovering
    if _recovered:
        return
    task = _recovering
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        task = _recovering = asyncio.ensure_future(recover_interrupted())
    # If it fails (the event log is unavailable), it raises here and the next request tries again.
    await asyncio.shield(task)
    _recovered = True


async def recover_interrupted() -> int:
    log = get_event_log()
    count = 0
    for run in await store.unfinished_runs_elsewhere():
        if not await log.executor_alive(run.executor) and await mark_interrupted(run):
            count += 1
    return count


def local_executor(run_id: str) -> Executor | None:
    return _executors.get(run_id)


async def wait_for_end(run_id: str) -> LogEvent:
    """Wait (as a subscriber, so the run is not orphaned) for the run's terminal event."""
    log = get_event_log()
    await log.add_subscriber(run_id)
    try:
        cursor = 0
        while True:
            events = await log.wait_after(run_id, cursor, None)
            if events:
                cursor = events[-1].seq
                if events[-1].terminal:
                    return events[-1]
    finally:
        await log.remove_subscriber(run_id)
