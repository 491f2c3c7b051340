"""A server that dies mid-run: after a restart its runs are failed ("interrupted"), never left running."""

import asyncio

import httpx
import pytest

from tests.live import ServerProcess
from tests.sse_helpers import run_status, take, wait_for


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_runs_of_a_killed_server_are_marked_interrupted_and_their_streams_end(kind, workflows):
    with ServerProcess(kind) as first, httpx.Client(base_url=first.url, timeout=15) as client:
        seen = take(client, "GET", "/workflows/steps/execute?count=3&delay=0.01&seconds=60", limit=6)
        run_id = seen[0].json()["run_id"]
        # wait until what the client saw is archived (ARCHIVE_INTERVAL_SECONDS), then crash
        from nexus_sse.models import RunEvent

        wait_for(lambda: RunEvent.objects.filter(run_id=run_id).count() >= len(seen))
        first.kill()
    with ServerProcess(kind) as second, httpx.Client(base_url=second.url, timeout=15) as client:
        status = run_status(client, run_id)
        assert status["status"] == "failed"
        assert status["error_type"] == "InternalError" and status["error"] == "interrupted"
        replay = take(client, "GET", f"/runs/{run_id}/events")
        assert [e.id for e in replay[: len(seen)]] == [e.id for e in seen]
        assert replay[-1].event == "error" and replay[-1].json()["error_type"] == "InternalError"
        resumed = take(client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": seen[-1].id})
        assert [e.event for e in resumed][-1] == "error" and resumed[-1].json()["error"] == "interrupted"


def test_a_cursor_past_the_archive_of_an_interrupted_run_still_gets_its_end(workflows):
    from nexus_sse.models import RunEvent

    # tokens 50 ms apart, archived once a second: the client reads 30 (1.5 s) while ~20 are archived
    with (
        ServerProcess("uvicorn", overrides={"ARCHIVE_INTERVAL_SECONDS": 1.0}) as first,
        httpx.Client(base_url=first.url, timeout=15) as client,
    ):
        seen = take(client, "GET", "/workflows/tokens/execute?count=200&delay=0.05", limit=30)
        first.kill()
    run_id = seen[0].json()["run_id"]
    archived = RunEvent.objects.filter(run_id=run_id).count()
    assert 0 < archived < len(seen), "precondition: the client is ahead of the archive"
    with ServerProcess("uvicorn") as second, httpx.Client(base_url=second.url, timeout=15) as client:
        resumed = take(client, "GET", "/workflows/tokens/execute", params={"lastEventId": seen[-1].id})
    assert len(resumed) == 1 and resumed[0].event == "error" and resumed[0].json()["error"] == "interrupted"


def test_the_rest_api_shows_a_killed_servers_run_as_failed_on_its_first_request(workflows):
    from nexus_sse.models import Run

    with ServerProcess("uvicorn") as first, httpx.Client(base_url=first.url, timeout=15) as client:
        seen = take(client, "GET", "/workflows/slow/execute?seconds=60", limit=1)
        run_id = seen[0].json()["run_id"]
        wait_for(lambda: Run.objects.filter(pk=run_id, status="running").exists())
        first.kill()
    with ServerProcess("uvicorn") as second, httpx.Client(base_url=second.url, timeout=15) as client:
        detail = client.get(f"/api/runs/{run_id}/")  # the first request this process serves
    assert detail.status_code == 200
    assert (detail.json()["status"], detail.json()["error"]) == ("failed", "interrupted")


async def test_recovery_that_failed_is_tried_again_by_the_next_request(monkeypatch):
    from nexus_sse import runs
    from nexus_sse.exceptions import EventLogUnavailable

    attempts = []

    async def recover():
        attempts.append(1)
        if len(attempts) == 1:
            raise EventLogUnavailable()
        return 0

    monkeypatch.setattr(runs.manager, "_recovered", False)
    monkeypatch.setattr(runs.manager, "recover_interrupted", recover)
    with pytest.raises(EventLogUnavailable):
        await runs.recover_interrupted_once()
    await runs.recover_interrupted_once()
    await runs.recover_interrupted_once()
    assert len(attempts) == 2  # retried once after the failure, then never again


async def test_the_first_requests_of_a_process_share_one_recovery(monkeypatch):
    from nexus_sse import runs

    attempts = []
    release = asyncio.Event()

    async def recover():
        attempts.append(1)
        await release.wait()
        return 0

    monkeypatch.setattr(runs.manager, "_recovered", False)
    monkeypatch.setattr(runs.manager, "_recovering", None)
    monkeypatch.setattr(runs.manager, "recover_interrupted", recover)
    waiting = [asyncio.ensure_future(runs.recover_interrupted_once()) for _ in range(10)]
    await asyncio.sleep(0)  # all ten are waiting on the recovery now
    release.set()
    await asyncio.gather(*waiting)
    assert len(attempts) == 1
