"""The run core's seams: the database router, the DB threads' connection lifetime, the wire
vocabulary, the stream views' marker, and the resume decision on an interrupted run."""

from __future__ import annotations

import asyncio

import pytest
from django.db import connection, connections
from django.db.utils import ConnectionDoesNotExist
from django.test import override_settings
from django.utils import timezone

from nexus_sse import db, registry, runs, sse, store, views
from nexus_sse.enums import TERMINAL_EVENTS, EventType, RunMode
from nexus_sse.eventlog import LogEvent
from nexus_sse.models import Run, RunEvent, Workflow


class RecordingRouter:
    """Send nexus_sse's models to ``alias`` and record what is asked."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.asked: list[tuple[str, str]] = []

    def db_for_write(self, model, **hints):
        self.asked.append(("write", model.__name__))
        return self.alias if model._meta.app_label == "nexus_sse" else None

    def db_for_read(self, model, **hints):
        self.asked.append(("read", model.__name__))
        return self.alias if model._meta.app_label == "nexus_sse" else None


@pytest.mark.django_db(transaction=True)
async def test_run_writes_go_to_the_database_the_router_names(workflows):
    router = RecordingRouter()
    with override_settings(DATABASE_ROUTERS=[router]):
        workflow = await asyncio.to_thread(Workflow.objects.get, slug="greet")
        run = await runs.start(workflow, registry.graph_for(workflow), {"name": "r"}, mode=RunMode.ASYNC)
        executor = runs.local_executor(str(run.pk))
        end = await runs.wait_for_end(str(run.pk))
        await executor.task
    assert end.event == "complete"
    assert ("write", "Run") in router.asked  # the SQL writes (row, end) asked the router
    stored = await asyncio.to_thread(lambda: Run.objects.get(pk=run.pk).status)
    assert stored == Run.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
async def test_a_run_routed_to_another_database_is_not_written_to_default(workflows):
    workflow = await asyncio.to_thread(Workflow.objects.get, slug="greet")
    with override_settings(DATABASE_ROUTERS=[RecordingRouter("elsewhere")]):
        with pytest.raises(ConnectionDoesNotExist, match="elsewhere"):
            await store.create_run(Run.new(workflow, RunMode.ASYNC, {}))
        row, events = Run.new(workflow, RunMode.ASYNC, {}), []
        with pytest.raises(ConnectionDoesNotExist, match="elsewhere"):
            await store.create_run_with_events(row, events)
    assert store.write_alias() == "default"  # the cached answer went with the override


@pytest.fixture
def db_threads(monkeypatch):
    """Fresh DB threads (so connections open under the test's settings), closed again after it."""
    db.close_connections()
    yield connections["default"].settings_dict
    db.close_connections()


def raw_connection():
    with connection.cursor():
        pass
    return connection.connection


@pytest.mark.django_db(transaction=True)
async def test_db_threads_reconnect_once_a_connection_is_older_than_conn_max_age(db_threads, monkeypatch):
    monkeypatch.setitem(db_threads, "CONN_MAX_AGE", 0)
    monkeypatch.setattr(db, "CONNECTION_CHECK_SECONDS", 0.0)
    first = await db.call(raw_connection)
    assert await db.call(raw_connection) is not first


@pytest.mark.django_db(transaction=True)
async def test_db_threads_look_at_connection_age_at_most_every_check_interval(db_threads, monkeypatch):
    monkeypatch.setitem(db_threads, "CONN_MAX_AGE", 0)
    monkeypatch.setattr(db, "CONNECTION_CHECK_SECONDS", 3600.0)
    first = await db.call(raw_connection)
    assert await db.call(raw_connection) is first  # not a new connection per query


def break_connection() -> None:
    connection.is_usable = lambda: False  # what a database that went away answers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("health_checks", [True, False])
async def test_with_conn_health_checks_a_broken_connection_is_replaced(
    db_threads, monkeypatch, health_checks
):
    monkeypatch.setitem(db_threads, "CONN_MAX_AGE", None)
    monkeypatch.setitem(db_threads, "CONN_HEALTH_CHECKS", health_checks)
    monkeypatch.setattr(db, "CONNECTION_CHECK_SECONDS", 0.0)
    first = await db.call(raw_connection)
    await db.call(break_connection)
    replaced = await db.call(raw_connection) is not first
    assert replaced is health_checks


def test_the_vocabulary_encodes_as_the_plain_strings():
    run_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
    for event in EventType:
        assert LogEvent(run_id, 1, event, "{}").wire == LogEvent(run_id, 1, event.value, "{}").wire
    assert (
        LogEvent(run_id, 2, EventType.START, "{}").wire
        == f"id: {run_id}:2\nevent: start\ndata: {{}}\n\n".encode()
    )
    data = {"mode": RunMode.ASYNC, "event": EventType.ERROR, "status": Run.Status.FAILED}
    assert sse.dumps(data) == sse.dumps({"mode": "async", "event": "error", "status": "failed"})
    assert {"complete", "error"} == TERMINAL_EVENTS and LogEvent(run_id, 3, "error", "{}").terminal


def test_only_the_stream_views_are_marked_as_streams():
    assert views.execute.nexus_streams is True and views.run_events.nexus_streams is True
    assert views.run_detail.nexus_streams is False and views.run_cancel.nexus_streams is False


def interrupted_run(marked: bool) -> str:
    """A failed run whose archive ends with its interruption (``marked``: the data field is there)."""
    run = Run.objects.create(
        workflow=Workflow.objects.get(slug="greet"),
        status=Run.Status.FAILED,
        error="interrupted",
        error_type="InternalError",
        finished_at=timezone.now(),
    )
    end = {"error": "interrupted", "error_type": "InternalError", **({"interrupted": True} if marked else {})}
    RunEvent.objects.bulk_create(
        [
            RunEvent(run=run, seq=1, event="start", data={}),
            RunEvent(run=run, seq=2, event="token", data={"delta": "a"}),
            RunEvent(run=run, seq=3, event="error", data=end),
        ]
    )
    return str(run.pk)


@pytest.mark.django_db(transaction=True)
async def test_a_cursor_past_an_interrupted_runs_archive_gets_its_end_decided_by_the_field(
    async_client, workflows
):
    marked, unmarked = (
        await asyncio.to_thread(interrupted_run, True),
        await asyncio.to_thread(interrupted_run, False),
    )
    # The client saw seq 5 before the process died (4 and 5 were never archived).
    response = await async_client.get(f"/runs/{marked}/events", headers={"Last-Event-ID": f"{marked}:5"})
    body = b"".join([chunk async for chunk in response.streaming_content])
    events = [e for e in sse.parse(body) if e.data]
    assert [(e.id, e.event) for e in events] == [(f"{marked}:3", "error")]
    assert events[0].json()["interrupted"] is True
    # The same message without the field is just an error: a cursor past it is ahead of the run.
    response = await async_client.get(f"/runs/{unmarked}/events", headers={"Last-Event-ID": f"{unmarked}:5"})
    assert response.status_code == 400 and response.json()["path"] == "Last-Event-ID"


@pytest.mark.django_db(transaction=True)
async def test_a_run_marked_interrupted_says_so_in_its_error_event(workflows):
    workflow = await asyncio.to_thread(Workflow.objects.get, slug="greet")
    run = Run.new(workflow, RunMode.ASYNC, {})
    run.executor = "gone:1:dead"
    await store.create_run(run)
    assert await runs.mark_interrupted(str(run.pk))
    last = await store.last_archived(str(run.pk))
    assert last is not None and last.event == "error"
    assert {k: last.data[k] for k in ("error", "error_type", "interrupted")} == {
        "error": "interrupted",
        "error_type": "InternalError",
        "interrupted": True,
    }
    assert not await runs.mark_interrupted(str(run.pk))  # once only
