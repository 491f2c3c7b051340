"""db.write: writes submitted while a transaction is written share the next one; a bad one fails alone."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from django.db import IntegrityError, transaction

from nexus_sse import db, store
from nexus_sse.eventlog import LogEvent
from nexus_sse.models import Run, RunEvent, Workflow

pytestmark = pytest.mark.django_db(transaction=True)


def new_run() -> Run:
    workflow = Workflow.objects.create(slug=f"w{uuid.uuid4().hex[:8]}", definition={"nodes": []})
    return Run.objects.create(workflow=workflow)


def event(run_id: str, seq: int) -> list[LogEvent]:
    return [LogEvent(run_id, seq, "progress", f'{{"n": {seq}}}')]


@pytest.fixture
def batches(monkeypatch):
    """The sizes of the batches the group commit hands to the database thread."""
    sizes: list[int] = []
    real = db._write_together

    def recording(writes, *args):
        sizes.append(len(writes))
        return real(writes, *args)

    monkeypatch.setattr(db, "_write_together", recording)
    return sizes


async def hold_a_first_write(run_id: str) -> tuple[asyncio.Future, threading.Event]:
    """Start a write of seq 1 that waits on the database thread until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def held(*args):
        entered.set()
        release.wait(10)
        store.insert_events(*args)

    first = asyncio.ensure_future(db.write(held, run_id, event(run_id, 1)))
    await asyncio.to_thread(entered.wait, 10)  # the first write is on the database thread now
    return first, release


async def test_writes_that_arrive_during_a_commit_share_the_next_one(batches):
    run = await asyncio.to_thread(new_run)
    run_id = str(run.pk)
    first, release = await hold_a_first_write(run_id)
    rest = [
        asyncio.ensure_future(db.write(store.insert_events, run_id, event(run_id, seq)))
        for seq in range(2, 7)
    ]
    await asyncio.sleep(0)  # let them queue (no thread is waited on here: they only append to a list)
    release.set()
    await asyncio.gather(first, *rest)
    assert batches == [1, 5]
    seqs = await asyncio.to_thread(
        lambda: list(RunEvent.objects.filter(run_id=run_id).values_list("seq", flat=True))
    )
    assert sorted(seqs) == [1, 2, 3, 4, 5, 6]


async def test_a_failing_write_fails_alone_and_the_others_are_kept(batches):
    run = await asyncio.to_thread(new_run)
    run_id = str(run.pk)

    def broken(*args):  # atomic by itself, as db.write asks: its insert goes when it raises
        with transaction.atomic(savepoint=False):
            store.insert_events(*args)
            raise ValueError("this write is broken")

    missing_run = str(uuid.uuid4())  # a foreign key that fails only at commit time
    first, release = await hold_a_first_write(run_id)
    good = [asyncio.ensure_future(db.write(store.insert_events, run_id, event(run_id, s))) for s in (2, 3)]
    bad = asyncio.ensure_future(db.write(broken, run_id, event(run_id, 4)))
    orphan = asyncio.ensure_future(db.write(store.insert_events, missing_run, event(missing_run, 1)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *good)
    with pytest.raises(ValueError, match="broken"):
        await bad
    with pytest.raises(IntegrityError):
        await orphan
    assert batches == [1, 4]  # the four together, rolled back, then each alone
    seqs = await asyncio.to_thread(
        lambda: sorted(RunEvent.objects.filter(run_id=run_id).values_list("seq", flat=True))
    )
    assert seqs == [1, 2, 3]
    assert not await asyncio.to_thread(lambda: RunEvent.objects.filter(run_id=missing_run).exists())


async def test_consecutive_writes_of_one_kind_go_out_as_one_statement(batches, monkeypatch):
    run = await asyncio.to_thread(new_run)
    run_id = str(run.pk)
    together: list[list] = []
    real = store.insert_events_of

    def recording(runs, alias=None):
        together.append([(rid, [e.seq for e in events]) for rid, events in runs])
        return real(runs, alias)

    monkeypatch.setattr(store, "insert_events_of", recording)
    first, release = await hold_a_first_write(run_id)
    rest = [
        asyncio.ensure_future(db.write(store.insert_events, run_id, event(run_id, seq)))
        for seq in range(2, 6)
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *rest)
    assert batches == [1, 4]
    # the held first write went alone; the four queued behind it as one executemany
    assert together == [[(run_id, [1])], [(run_id, [2]), (run_id, [3]), (run_id, [4]), (run_id, [5])]]
    rows = await asyncio.to_thread(
        lambda: list(
            RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "event", "data")
        )
    )
    assert rows == [(s, "progress", {"n": s}) for s in range(1, 6)]


async def test_runs_saved_together_are_stored_as_runs_saved_alone(batches):
    workflow = await asyncio.to_thread(
        lambda: Workflow.objects.create(slug=f"w{uuid.uuid4().hex[:8]}", definition={"nodes": []})
    )

    def unsaved(n: int) -> tuple[Run, list[LogEvent]]:
        run = Run.new(workflow, "stream", {"n": n})
        run.status, run.result, run.outputs, run.execution_time = (
            Run.Status.COMPLETED,
            {"r": n},
            {"a": {"r": n}},
            0.5,
        )
        rid = str(run.pk)
        return run, [
            LogEvent(rid, 1, "start", f'{{"n": {n}}}'),
            LogEvent(rid, 2, "complete", f'{{"r": {n}}}'),
        ]

    alone, *shared = [unsaved(n) for n in range(4)]
    blocker = await asyncio.to_thread(new_run)
    first, release = await hold_a_first_write(str(blocker.pk))
    writes = [asyncio.ensure_future(db.write(store.save_run, *args)) for args in shared]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *writes)
    await db.write(store.save_run, *alone)
    assert batches == [1, 3, 1]

    def stored(run: Run) -> tuple:
        row = Run.objects.filter(pk=run.pk).values().get()
        events = list(
            RunEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("seq", "event", "data")
        )
        return {k: v for k, v in row.items() if k not in ("id", "created_at", "started_at")}, events

    expected = await asyncio.to_thread(stored, alone[0])
    for n, (run, _) in enumerate(shared, start=1):
        fields, events = await asyncio.to_thread(stored, run)
        assert fields == {**expected[0], "inputs": {"n": n}, "result": {"r": n}, "outputs": {"a": {"r": n}}}
        assert events == [(1, "start", {"n": n}), (2, "complete", {"r": n})]
