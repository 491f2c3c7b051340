"""Every read and write of Run and RunEvent rows: the one owner of nexus_sse's run tables.

A short run writes three times: its Run row, its events, its end. Through the ORM these cost more
Python than the whole rest of a run, so they are written with SQL built once per model and database;
values still go through each field's ``get_db_prep_save``, and event data goes in as the JSON text the
event log already encoded (no decode and re-encode). Each write has a form for many runs (one
statement executed for all their rows), which ``db.write`` uses for writes of the same kind that
share a transaction.

The sync functions run on nexus_sse's DB threads; the rest of nexus_sse calls the async ones. The
database is the one ``DATABASE_ROUTERS`` names for Run (Django's "default" without routers).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable
from typing import Any

from django.core.signals import setting_changed
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Field, ForeignKey
from django.dispatch import receiver
from django.utils import timezone

from nexus_sse import db, sse
from nexus_sse.eventlog.base import EXECUTOR_ID, READ_BATCH, LogEvent
from nexus_sse.models import Run, RunEvent, Workflow

logger = logging.getLogger("nexus_sse.store")


@functools.cache
def write_alias() -> str:
    """The database Run and RunEvent rows are written to (asked once: it is on every write)."""
    return router.db_for_write(Run)


@receiver(setting_changed)
def _routing_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("DATABASE_ROUTERS", "DATABASES"):
        write_alias.cache_clear()


def _column(conn: Any, field: Any) -> str:
    return conn.ops.quote_name(field.column)


def _table(conn: Any, model: type[Run] | type[RunEvent]) -> str:
    return conn.ops.quote_name(model._meta.db_table)


def _field(model: type[Run] | type[RunEvent], name: str) -> Field:
    field = model._meta.get_field(name)
    assert isinstance(field, Field)
    return field


@functools.cache
def _run_key() -> Field:
    """The field RunEvent.run refers to (Run's primary key): how a run id is stored."""
    field = RunEvent._meta.get_field("run")
    assert isinstance(field, ForeignKey)
    return field.target_field


def _execute_rows(cursor: Any, sql: str, rows: list) -> None:
    """``sql`` once per row: one executemany, or a plain execute for a single row (the usual case)."""
    if len(rows) > 1:
        cursor.executemany(sql, rows)
    else:
        cursor.execute(sql, rows[0])


@functools.cache
def _insert_run_sql(alias: str) -> tuple[str, tuple[Field, ...]]:
    conn = connections[alias]
    fields = tuple(Run._meta.concrete_fields)
    columns = ", ".join(_column(conn, f) for f in fields)
    values = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {_table(conn, Run)} ({columns}) VALUES ({values})", fields


@functools.cache
def _insert_events_sql(alias: str) -> str:
    conn = connections[alias]
    cast = "::jsonb" if conn.vendor == "postgresql" else ""
    names = ("run", "seq", "event", "data", "created_at")
    columns = ", ".join(_column(conn, _field(RunEvent, n)) for n in names)
    return f"INSERT INTO {_table(conn, RunEvent)} ({columns}) VALUES (%s, %s, %s, %s{cast}, %s)"


# -- writes, on a DB thread ---------------------------------------------------------------------


@db.batched(lambda calls: insert_runs([run for (run,) in calls]))
def insert_run(run: Run, alias: str | None = None) -> None:
    """INSERT the (unsaved) Run, defaults already applied by the constructor."""
    insert_runs([run], alias)


def insert_runs(runs: list[Run], alias: str | None = None) -> None:
    """INSERT unsaved Runs, in one statement executed for each."""
    alias = alias or write_alias()
    conn = connections[alias]
    now = timezone.now()
    sql, fields = _insert_run_sql(alias)
    rows = []
    for run in runs:
        run.created_at = run.created_at or now
        rows.append([f.get_db_prep_save(getattr(run, f.attname), conn) for f in fields])
    with conn.cursor() as cursor:
        _execute_rows(cursor, sql, rows)
    for run in runs:
        run._state.adding = False
        run._state.db = alias


@db.batched(lambda calls: insert_events_of([(run_id, events) for run_id, events in calls]))
def insert_events(run_id: str, events: list[LogEvent], alias: str | None = None) -> None:
    """INSERT archived events; their data is the log's JSON text, stored as is."""
    insert_events_of([(run_id, events)], alias)


def insert_events_of(runs: list[tuple[str, list[LogEvent]]], alias: str | None = None) -> None:
    """INSERT the archived events of several runs (``[(run_id, events)]``) in one statement."""
    alias = alias or write_alias()
    conn = connections[alias]
    run_field = _run_key()
    created = _field(RunEvent, "created_at").get_db_prep_save(timezone.now(), conn)
    rows: list[tuple[Any, ...]] = []
    for run_id, events in runs:
        run_value = run_field.get_db_prep_save(run_id, conn)
        rows.extend((run_value, e.seq, e.event, e.data_json, created) for e in events)
    if not rows:
        return
    # One transaction per batch: in autocommit every row would be a commit of its own (10x slower).
    # Inside a caller's transaction (db.write's), no savepoint: it would cost two more statements.
    with transaction.atomic(using=alias, savepoint=False), conn.cursor() as cursor:
        cursor.executemany(_insert_events_sql(alias), rows)


def update_runs(updates: list[tuple[str, dict[str, Any]]], alias: str | None = None) -> None:
    """UPDATE Runs (``[(run_id, fields)]``), one statement per set of field names."""
    conn = connections[alias or write_alias()]
    pk = _field(Run, "id")
    statements: dict[tuple[str, ...], list[list[Any]]] = {}
    for run_id, fields in updates:
        params = [_field(Run, name).get_db_prep_save(value, conn) for name, value in fields.items()]
        params.append(pk.get_db_prep_save(run_id, conn))
        statements.setdefault(tuple(fields), []).append(params)
    with conn.cursor() as cursor:
        for names, rows in statements.items():
            assignments = ", ".join(f"{_column(conn, _field(Run, n))} = %s" for n in names)
            sql = f"UPDATE {_table(conn, Run)} SET {assignments} WHERE {_column(conn, pk)} = %s"
            _execute_rows(cursor, sql, rows)


@db.batched(lambda calls: record_ends([(run_id, events, fields) for run_id, events, fields in calls]))
def record_end(run_id: str, events: list[LogEvent], fields: dict[str, Any], alias: str | None = None) -> None:
    """Archive the last events (the terminal one included) and record how the run ended, atomically."""
    record_ends([(run_id, events, fields)], alias)


def record_ends(ends: list[tuple[str, list[LogEvent], dict[str, Any]]], alias: str | None = None) -> None:
    """``record_end`` for several runs (``[(run_id, events, fields)]``), atomically."""
    alias = alias or write_alias()
    with transaction.atomic(using=alias, savepoint=False):
        insert_events_of([(run_id, events) for run_id, events, _ in ends], alias)
        update_runs([(run_id, fields) for run_id, _, fields in ends], alias)


def save_runs(calls: list[tuple[Run, list[LogEvent]]]) -> None:
    """``save_run`` for several runs in one transaction (if one's workflow row was replaced, this
    fails and db.write retries each alone, where ``save_run`` follows it)."""
    alias = write_alias()
    with transaction.atomic(using=alias, savepoint=False):
        insert_runs([run for run, _ in calls], alias)
        insert_events_of([(str(run.pk), events) for run, events in calls], alias)


@db.batched(save_runs)
def save_run(run: Run, events: list[LogEvent]) -> None:
    """Write a Run row not written yet (with its current fields) and events, in one transaction."""
    try:
        save_runs([(run, events)])
    except IntegrityError:
        # (Foreign keys are checked at commit.) The workflow's row was replaced since the run
        # started (deleted and synced again): follow it to its new row, once.
        run.workflow = Workflow.objects.get(slug=run.workflow.slug)
        save_runs([(run, events)])


# -- what the rest of nexus_sse calls -----------------------------------------------------------
# The hot ones return db.write's awaitable as it is: no coroutine of their own per call.


def create_run(run: Run) -> Awaitable[None]:
    """Write a new Run's row (its events follow)."""
    return db.write(insert_run, run, using=write_alias())


def create_run_with_events(run: Run, events: list[LogEvent]) -> Awaitable[None]:
    """Write a Run's row, not written yet, with its current fields and ``events``, in one transaction."""
    return db.write(save_run, run, events, using=write_alias())


def append_events(run_id: str, events: list[LogEvent]) -> Awaitable[None]:
    """Archive ``events`` of a run whose row exists."""
    return db.write(insert_events, run_id, events, using=write_alias())


def finish_run(run_id: str, events: list[LogEvent], fields: dict[str, Any]) -> Awaitable[None]:
    """Archive the run's last events and record how it ended (``fields`` of Run), atomically."""
    return db.write(record_end, run_id, events, fields, using=write_alias())


async def fail_run(run_id: str, message: str, error_type: str) -> None:
    """Record that a run failed before it started (its row is written, no event is)."""
    failed = {
        "status": Run.Status.FAILED,
        "error": message,
        "error_type": error_type,
        "finished_at": timezone.now(),
    }
    await db.call(lambda: Run.objects.filter(pk=run_id).update(**failed))


async def cancel_queued_run(run_id: str, message: str, error_type: str) -> bool:
    """Cancel a run still queued (no worker has claimed it); False if it is not queued any more."""
    return bool(
        await db.call(
            lambda: Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(
                status=Run.Status.CANCELLED,
                error=message,
                error_type=error_type,
                finished_at=timezone.now(),
            )
        )
    )


def _claim(run_id: str) -> Run | None:
    claimed = Run.objects.filter(pk=run_id, status=Run.Status.PENDING).update(
        status=Run.Status.RUNNING, executor=EXECUTOR_ID, started_at=timezone.now()
    )
    return Run.objects.select_related("workflow").get(pk=run_id) if claimed else None


async def claim_run(run_id: str) -> Run | None:
    """In a worker: take a queued run (this process becomes its executor); None if another has it,
    or it was cancelled while queued."""
    return await db.call(_claim, run_id)


def _interrupt(run_id: str, events: list[LogEvent], data: dict[str, Any]) -> bool:
    with transaction.atomic(using=write_alias()):
        claimed = Run.objects.filter(pk=run_id, status__in=Run.UNFINISHED).update(
            status=Run.Status.FAILED,
            error=data["error"],
            error_type=data["error_type"],
            finished_at=timezone.now(),
        )
        if not claimed:
            return False
        insert_events(run_id, events)
    logger.warning("run %s was interrupted (its executor is gone); marked failed", run_id)
    return True


async def interrupt_run(run_id: str, events: list[LogEvent], data: dict[str, Any]) -> bool:
    """Fail a run whose executor died and archive ``events``, the last its ``error`` event (with
    ``data``); False if it had ended already (or another process marked it first)."""
    return await db.call(_interrupt, run_id, events, data)


# -- reads ----------------------------------------------------------------------------------------


async def get_run(run_id: Any) -> Run | None:
    """The Run (with its workflow), or None."""
    return await db.call(lambda: Run.objects.select_related("workflow").filter(pk=run_id).first())


async def reload_run(run_id: Any) -> Run:
    return await db.call(lambda: Run.objects.get(pk=run_id))


async def unfinished_runs_elsewhere() -> list[Run]:
    """Unfinished runs some other process executes (runs with no executor are queued, not lost)."""
    return await db.call(
        lambda: list(
            Run.objects.filter(status__in=Run.UNFINISHED).exclude(executor=EXECUTOR_ID).exclude(executor="")
        )
    )


async def executor_of(run_id: str) -> str | None:
    """The process executing the run (None: nobody yet, or no such run)."""
    return (
        await db.call(lambda: Run.objects.filter(pk=run_id).values_list("executor", flat=True).first())
        or None
    )


async def read_events(run_id: str, after: int, before: int | None = None) -> list[LogEvent]:
    """Up to READ_BATCH archived events of a run after seq ``after`` (and before ``before``), in order."""

    def rows() -> list[tuple[int, str, Any]]:
        query = RunEvent.objects.filter(run_id=run_id, seq__gt=after)
        if before is not None:
            query = query.filter(seq__lt=before)
        return list(query.order_by("seq").values_list("seq", "event", "data")[:READ_BATCH])

    return [LogEvent(run_id, seq, event, sse.dumps(data)) for seq, event, data in await db.call(rows)]


async def last_archived(run_id: str) -> LogEvent | None:
    """The run's newest archived event, or None."""
    row = await db.call(
        lambda: (
            RunEvent.objects.filter(run_id=run_id)
            .order_by("-seq")
            .values_list("seq", "event", "data")
            .first()
        )
    )
    return None if row is None else LogEvent(run_id, row[0], row[1], sse.dumps(row[2]))
