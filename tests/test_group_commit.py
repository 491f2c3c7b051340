"""db.write: writes submitted while a transaction is written share the next one; a bad one fails alone."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from django.db import IntegrityError, transaction

from nexus_sse import archive, db
from nexus_sse.eventlog import LogEvent
from nexus_sse.models import Run, RunEvent, Workflow

pytestmark = pytest.mark.django_db(transaction=True)


def new_run() -> Run:
    workflow = Workflow.objects.create(slug=f"w{uuid.uuid4().hex[:8]}", definition={"nodes": []})
    return Run.objects.create(workflow=workflow)


def event(run_id: str, seq: int) -> list[LogEvent]:
    return [LogEvent(run_id, seq, "progress", '{"n": %d}' % seq)]


@pytest.fixture
def batches(monkeypatch):
    """The sizes of the batches the group commit hands to the database thread."""
    sizes: list[int] = []
    real = db._write_together

    def recording(writes):
        sizes.append(len(writes))
        return real(writes)

    monkeypatch.setattr(db, "_write_together", recording)
    return sizes


async def hold_a_first_write(run_id: str) -> tuple[asyncio.Future, threading.Event]:
    """Start a write of seq 1 that waits on the database thread until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def held(*args):
        entered.set()
        release.wait(10)
        archive.insert_events(*args)

    first = asyncio.ensure_future(db.write(held, run_id, event(run_id, 1)))
    await asyncio.to_thread(entered.wait, 10)  # the first write is on the database thread now
    return first, release


async def test_writes_that_arrive_during_a_commit_share_the_next_one(batches):
    run = await asyncio.to_thread(new_run)
    run_id = str(run.pk)
    first, release = await hold_a_first_write(run_id)
    rest = [asyncio.ensure_future(db.write(archive.insert_events, run_id, event(run_id, seq))) for seq in range(2, 7)]
    await asyncio.sleep(0)  # let them queue (no thread is waited on here: they only append to a list)
    release.set()
    await asyncio.gather(first, *rest)
    assert batches == [1, 5]
    seqs = await asyncio.to_thread(lambda: list(RunEvent.objects.filter(run_id=run_id).values_list("seq", flat=True)))
    assert sorted(seqs) == [1, 2, 3, 4, 5, 6]


async def test_a_failing_write_fails_alone_and_the_others_are_kept(batches):
    run = await asyncio.to_thread(new_run)
    run_id = str(run.pk)

    def broken(*args):  # atomic by itself, as db.write asks: its insert goes when it raises
        with transaction.atomic(savepoint=False):
            archive.insert_events(*args)
            raise ValueError("this write is broken")

    missing_run = str(uuid.uuid4())  # a foreign key that fails only at commit time
    first, release = await hold_a_first_write(run_id)
    good = [asyncio.ensure_future(db.write(archive.insert_events, run_id, event(run_id, s))) for s in (2, 3)]
    bad = asyncio.ensure_future(db.write(broken, run_id, event(run_id, 4)))
    orphan = asyncio.ensure_future(db.write(archive.insert_events, missing_run, event(missing_run, 1)))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *good)
    with pytest.raises(ValueError, match="broken"):
        await bad
    with pytest.raises(IntegrityError):
        await orphan
    assert batches == [1, 4]  # the four together, rolled back, then each alone
    seqs = await asyncio.to_thread(lambda: sorted(RunEvent.objects.filter(run_id=run_id).values_list("seq", flat=True)))
    assert seqs == [1, 2, 3]
    assert not await asyncio.to_thread(lambda: RunEvent.objects.filter(run_id=missing_run).exists())
