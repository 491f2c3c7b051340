"""The hot database writes of a run, as precompiled SQL on nexus_sse's DB threads.

A short run writes three times: its Run row, its events, its end. Through the ORM these cost more
Python than the whole rest of a run, so they are written here with SQL built once per model and
database vendor; values still go through each field's ``get_db_prep_save``, and event data goes in as
the JSON text the event log already encoded (no decode and re-encode). Each has a form for many runs
(one statement executed for all their rows), which ``db.write`` uses for writes of the same kind that
share a transaction.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from nexus_sse import db
from nexus_sse.eventlog.base import LogEvent
from nexus_sse.models import Run, RunEvent


def _quote(conn: Any, name: str) -> str:
    return conn.ops.quote_name(name)


def _execute_rows(cursor: Any, sql: str, rows: list) -> None:
    """``sql`` once per row: one executemany, or a plain execute for a single row (the usual case)."""
    if len(rows) > 1:
        cursor.executemany(sql, rows)
    else:
        cursor.execute(sql, rows[0])


@functools.cache
def _insert_run_sql(alias: str) -> tuple[str, tuple]:
    conn = connections[alias]
    fields = tuple(Run._meta.concrete_fields)
    columns = ", ".join(_quote(conn, f.column) for f in fields)
    return (
        f"INSERT INTO {_quote(conn, Run._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})",
        fields,
    )


@functools.cache
def _insert_events_sql(alias: str) -> str:
    conn = connections[alias]
    cast = "::jsonb" if conn.vendor == "postgresql" else ""
    opts = RunEvent._meta
    columns = ", ".join(
        _quote(conn, opts.get_field(n).column) for n in ("run", "seq", "event", "data", "created_at")
    )
    return f"INSERT INTO {_quote(conn, opts.db_table)} ({columns}) VALUES (%s, %s, %s, %s{cast}, %s)"


@db.batched(lambda calls: insert_runs([run for (run,) in calls]))
def insert_run(run: Run, alias: str = "default") -> None:
    """INSERT the (unsaved) Run, defaults already applied by the constructor."""
    insert_runs([run], alias)


def insert_runs(runs: list[Run], alias: str = "default") -> None:
    """INSERT unsaved Runs, in one statement executed for each."""
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
def insert_events(run_id: str, events: list[LogEvent], alias: str = "default") -> None:
    """INSERT archived events; their data is the log's JSON text, stored as is."""
    insert_events_of([(run_id, events)], alias)


def insert_events_of(runs: list[tuple[str, list[LogEvent]]], alias: str = "default") -> None:
    """INSERT the archived events of several runs (``[(run_id, events)]``) in one statement."""
    conn = connections[alias]
    run_field = RunEvent._meta.get_field("run").target_field
    created = RunEvent._meta.get_field("created_at").get_db_prep_save(timezone.now(), conn)
    rows = []
    for run_id, events in runs:
        run_value = run_field.get_db_prep_save(run_id, conn)
        rows.extend((run_value, e.seq, e.event, e.data_json, created) for e in events)
    if not rows:
        return
    # One transaction per batch: in autocommit every row would be a commit of its own (10x slower).
    # Inside a caller's transaction (db.write's), no savepoint: it would cost two more statements.
    with transaction.atomic(using=alias, savepoint=False), conn.cursor() as cursor:
        cursor.executemany(_insert_events_sql(alias), rows)


def update_run(run_id: str, fields: dict[str, Any], alias: str = "default") -> None:
    """UPDATE the named fields of one Run."""
    update_runs([(run_id, fields)], alias)


def update_runs(updates: list[tuple[str, dict[str, Any]]], alias: str = "default") -> None:
    """UPDATE Runs (``[(run_id, fields)]``), one statement per set of field names."""
    conn = connections[alias]
    opts = Run._meta
    statements: dict[tuple[str, ...], list[list[Any]]] = {}
    for run_id, fields in updates:
        model_fields = [opts.get_field(name) for name in fields]
        params = [f.get_db_prep_save(fields[f.name], conn) for f in model_fields]
        params.append(opts.pk.get_db_prep_save(run_id, conn))
        statements.setdefault(tuple(fields), []).append(params)
    with conn.cursor() as cursor:
        for names, rows in statements.items():
            assignments = ", ".join(f"{_quote(conn, opts.get_field(n).column)} = %s" for n in names)
            sql = f"UPDATE {_quote(conn, opts.db_table)} SET {assignments} WHERE {_quote(conn, opts.pk.column)} = %s"
            _execute_rows(cursor, sql, rows)


@db.batched(lambda calls: finish_runs([(run_id, events, fields) for run_id, events, fields in calls]))
def finish_run(run_id: str, events: list[LogEvent], fields: dict[str, Any], alias: str = "default") -> None:
    """Archive the last events (the terminal one included) and record how the run ended, atomically."""
    finish_runs([(run_id, events, fields)], alias)


def finish_runs(ends: list[tuple[str, list[LogEvent], dict[str, Any]]], alias: str = "default") -> None:
    """``finish_run`` for several runs (``[(run_id, events, fields)]``), atomically."""
    with transaction.atomic(using=alias, savepoint=False):
        insert_events_of([(run_id, events) for run_id, events, _ in ends], alias)
        update_runs([(run_id, fields) for run_id, _, fields in ends], alias)
