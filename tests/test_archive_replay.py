"""Replaying a finished run that only the database archive still holds: page by page, in order."""

from __future__ import annotations

import asyncio

import pytest
from django.utils import timezone

from nexus_sse import follower, store
from nexus_sse.models import Run, RunEvent, Workflow
from tests.inprocess import Response, request

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = 35


def archived_run() -> str:
    """A completed run whose 35 events are in the archive only (no event log holds it)."""
    run = Run.objects.create(
        workflow=Workflow.objects.get(slug="greet"), status=Run.Status.COMPLETED, finished_at=timezone.now()
    )
    rows = [RunEvent(run=run, seq=1, event="start", data={"n": 1})]
    rows += [RunEvent(run=run, seq=s, event="token", data={"delta": f"t{s}"}) for s in range(2, EVENTS)]
    rows.append(RunEvent(run=run, seq=EVENTS, event="complete", data={"result": {"n": EVENTS}}))
    RunEvent.objects.bulk_create(rows)
    return str(run.pk)


@pytest.fixture
def pages(monkeypatch):
    """A page of 10 events, and the cursor of every archive read."""
    monkeypatch.setattr(follower, "READ_BATCH", 10)
    monkeypatch.setattr(store, "READ_BATCH", 10)
    reads: list[int] = []
    real = store.read_events

    async def counting(run_id, after, before=None):
        reads.append(after)
        return await real(run_id, after, before)

    monkeypatch.setattr(store, "read_events", counting)  # the view's first page and the pages after it
    return reads


def seqs(response: Response) -> list[int]:
    return [int(line.rsplit(":", 1)[1]) for line in response.text.splitlines() if line.startswith("id: ")]


async def test_a_finished_runs_archive_is_replayed_a_page_at_a_time(workflows, pages):
    run_id = await asyncio.to_thread(archived_run)
    response = await request("GET", f"/runs/{run_id}/events")
    assert seqs(response) == list(range(1, EVENTS + 1))
    assert pages == [0, 10, 20, 30]  # never the whole run at once
    last, more_body = response.chunks[-1]
    assert more_body is False and b"event: complete" in last


async def test_a_resume_from_the_archive_starts_after_its_cursor(workflows, pages):
    run_id = await asyncio.to_thread(archived_run)
    response = await request("GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:12"})
    assert seqs(response) == list(range(13, EVENTS + 1))
    assert pages == [12, 22, 32]
