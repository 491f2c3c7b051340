"""Start, execute, cancel and recover runs. A run lives in its own task, never in a response.

One RunManager per process owns the runs it executes (their executors and tasks), the watchdog that
looks at them, and the recovery of runs whose process died. The module-level functions (``start``,
``cancel``, ``mark_interrupted``, ...) are the public API: the manager's methods.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

from nexus_sse import conf, db, metrics, registry, sse, store
from nexus_sse.enums import EventType, RunMode
from nexus_sse.eventlog import LogEvent, get_event_log
from nexus_sse.exceptions import EventLogUnavailable, InternalError, RunCancelledError
from nexus_sse.executor import Executor, RunInterrupted, error_data
from nexus_sse.models import Run, Workflow
from nexus_sse.workflows.builder import WorkflowGraph

logger = logging.getLogger("nexus_sse.runs")

CANCELLED_BY_REQUEST = "Cancelled by request."


class RunManager:
    """Own the runs this process executes: start, queue, claim, cancel, watch and recover them."""

    def __init__(self) -> None:
        #: executors of the runs this process is executing, by run id (also keeps their tasks alive)
        self.executors: dict[str, Executor] = {}
        #: one watchdog task per event loop; a task removes itself when it ends (asyncio.run cancels
        #: it before closing its loop), so a closed loop is never kept. (Not a WeakKeyDictionary:
        #: the task refers to its loop, so the key would never go.)
        self._watchdogs: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}
        self._recovered = False
        #: the recovery under way: the first requests of a process share it rather than each run one
        self._recovering: asyncio.Future | None = None

    async def start(
        self,
        workflow: Workflow,
        graph: WorkflowGraph,
        inputs: dict,
        *,
        user: Any = None,
        mode: str = RunMode.STREAM,
    ) -> Run:
        """Create the Run, append its ``start`` event, and execute it in a task of its own."""
        await self.recover_interrupted_once()
        run = Run.new(workflow, mode, inputs, user if getattr(user, "is_authenticated", False) else None)
        log = get_event_log()
        if conf.get("EXECUTOR") == "tasks":
            return await self._queue(run, workflow)
        # Written now when other processes may be asked about it at once (shared log), or when it runs
        # in the background (its status is looked up anywhere: API, admin). Otherwise with its first
        # events.
        persist_now = log.shared or mode == RunMode.ASYNC
        await log.announce()  # alive before the row names this process as the executor
        if persist_now:
            await store.create_run(run)
        executor = Executor(run, graph, workflow, persisted=persist_now)
        metrics.runs_started.labels(workflow=workflow.slug).inc()
        try:
            await executor.emit(EventType.START, {"workflow_id": workflow.slug, "version": workflow.version})
        except EventLogUnavailable as exc:  # the run never started: do not leave its row "running"
            if persist_now:
                await store.fail_run(executor.run_id, exc.message, exc.error_type)
            raise
        # A fresh context: the run must not inherit the request's ThreadSensitiveContext, whose thread
        # ends with the response (asgiref refuses calls from tasks that outlive it). Its database calls
        # go to asgiref's shared sync thread instead.
        executor.task = asyncio.create_task(
            executor.execute(), name=f"nexus_sse run {run.pk}", context=contextvars.Context()
        )
        self.executors[executor.run_id] = executor
        executor.task.add_done_callback(lambda _: self.executors.pop(executor.run_id, None))
        self._ensure_watchdog()
        return run

    async def _queue(self, run: Run, workflow: Workflow) -> Run:
        """Record the run as pending (no executor yet), append ``start``, and hand it to a worker."""
        # local: worker imports Django's tasks framework (a backport on Django 5.2), needed only here
        from nexus_sse import worker

        run.status, run.executor = Run.Status.PENDING, ""
        run_id = str(run.pk)
        data = {
            "workflow_id": workflow.slug,
            "version": workflow.version,
            "run_id": run_id,
            "timestamp": time.time(),
        }
        # the row and its start event together
        await store.create_run_with_events(run, [LogEvent(run_id, 1, EventType.START, sse.dumps(data))])
        metrics.runs_started.labels(workflow=workflow.slug).inc()
        await get_event_log().append(run_id, EventType.START, data, seq=1)
        await db.call(worker.enqueue, run_id)
        return run

    async def execute_queued(self, run_id: str) -> None:
        """In a worker: claim a pending run and execute it to its end, continuing its event sequence."""
        log = get_event_log()
        await log.announce()  # alive before the row names this worker as the executor
        run = await store.claim_run(run_id)
        if run is None:
            return  # cancelled while queued, or another worker has it
        executor = Executor(run, registry.graph_for(run.workflow), run.workflow, persisted=True)
        last = await log.last_event(run_id)
        executor.seq = last.seq if last else 0
        executor.task = asyncio.current_task()
        self.executors[run_id] = executor
        self._ensure_watchdog()
        try:
            await executor.execute()
        finally:
            self.executors.pop(run_id, None)

    def _ensure_watchdog(self) -> None:
        """One watchdog task per event loop looks at every running executor (not a task per run)."""
        loop = asyncio.get_running_loop()
        task = self._watchdogs.get(loop)
        if task is None or task.done():
            task = self._watchdogs[loop] = loop.create_task(
                self._watch_all(), name="nexus_sse watchdog", context=contextvars.Context()
            )
            task.add_done_callback(self._watchdog_ended)

    def _watchdog_ended(self, task: asyncio.Task) -> None:
        loop = task.get_loop()
        if self._watchdogs.get(loop) is task:
            del self._watchdogs[loop]

    async def _watch_all(self) -> None:
        while self.executors:
            step = max(0.02, min(1.0, conf.get("ORPHAN_SECONDS") / 5))
            await asyncio.sleep(step)
            for executor in list(self.executors.values()):
                if executor.watched and await executor.check(step):
                    executor.watched = False

    def watchdog_loops(self) -> list[asyncio.AbstractEventLoop]:
        """The event loops that have a watchdog task now (tests: none may be closed)."""
        return list(self._watchdogs)

    async def cancel(self, run: Run) -> str:
        """Ask a run to stop. Returns the status to report: "cancelling" or the run's final status."""
        executor = self.executors.get(str(run.pk))
        if executor is not None:
            executor.cancel(CANCELLED_BY_REQUEST)
            return "cancelling"
        if run.finished:
            return run.status
        log = get_event_log()
        if run.status == Run.Status.PENDING and not run.executor:  # still queued: no worker has it yet
            if await self._cancel_queued(str(run.pk)):
                return Run.Status.CANCELLED
            run = await store.reload_run(run.pk)
        if not await log.executor_alive(run.executor):
            await self.mark_interrupted(run)
            return Run.Status.FAILED
        if await log.request_cancel(str(run.pk)):
            return "cancelling"
        raise InternalError("The run is executing in another process that cannot be reached.")

    async def _cancel_queued(self, run_id: str) -> bool:
        """Cancel a run no worker has taken: its row, then its final ``error`` event."""
        error = RunCancelledError(CANCELLED_BY_REQUEST)
        if not await store.cancel_queued_run(run_id, error.message, error.error_type):
            return False
        log = get_event_log()
        data = error_data(error, run_id)
        last = await log.last_event(run_id)
        seq = (last.seq if last else 0) + 1
        await store.append_events(run_id, [LogEvent(run_id, seq, EventType.ERROR, sse.dumps(data))])
        await log.append(run_id, EventType.ERROR, data, seq=seq)
        await log.finished(run_id)
        return True

    async def mark_interrupted(self, run: Run | str) -> bool:
        """Record that a run died with its executor: status failed, a final ``error`` event.

        With a shared log, events the dead process appended but never archived are archived now, and
        the error event goes to the log too, so every stream following the run ends.
        """
        run_id = str(getattr(run, "pk", run))
        log = get_event_log()
        last = await store.last_archived(run_id)
        archived = last.seq if last else 0
        missing = [e for e in await log.read_after(run_id, archived) if not e.terminal] if log.shared else []
        seq = max([archived, *(e.seq for e in missing)]) + 1
        data = error_data(RunInterrupted(), run_id)
        error = LogEvent(run_id, seq, EventType.ERROR, sse.dumps(data))
        claimed = await store.interrupt_run(run_id, [*missing, error], data)
        if claimed and log.shared:
            try:
                await log.append(run_id, EventType.ERROR, data, seq=seq)
                await log.finished(run_id)
            except Exception:
                logger.exception("run %s: could not append its interruption to the log", run_id)
        return claimed

    async def recover_interrupted_once(self) -> None:
        """Once per process: fail every unfinished run whose executor is gone (a restart, a crash)."""
        if self._recovered:
            return
        task = self._recovering
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            task = self._recovering = asyncio.ensure_future(self.recover_interrupted())
        # If it fails (the event log is unavailable), it raises here and the next request tries again.
        await asyncio.shield(task)
        self._recovered = True
        self._recovering = None  # (a finished future keeps its loop)

    async def recover_interrupted(self) -> int:
        log = get_event_log()
        count = 0
        for run in await store.unfinished_runs_elsewhere():
            if not await log.executor_alive(run.executor) and await self.mark_interrupted(run):
                count += 1
        return count

    def local_executor(self, run_id: str) -> Executor | None:
        """The executor of the run if this process is executing it."""
        return self.executors.get(run_id)

    def running_tasks(self) -> list[asyncio.Task]:
        """The tasks of the runs this process is executing (shutdown gives them time to finish)."""
        return [e.task for e in list(self.executors.values()) if e.task is not None]

    async def wait_for_end(self, run_id: str) -> LogEvent:
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


#: the process's run manager
manager = RunManager()

# The public API: the manager's bound methods (no call of their own on the way to it).
start = manager.start
execute_queued = manager.execute_queued
cancel = manager.cancel
mark_interrupted = manager.mark_interrupted
recover_interrupted_once = manager.recover_interrupted_once
local_executor = manager.local_executor
running_tasks = manager.running_tasks
wait_for_end = manager.wait_for_end
