"""Graceful shutdown: SIGTERM ends streams with a retry hint; clients resume on another process without
loss; runs executing in the stopping process finish first; new requests there get 503."""

import signal

import httpx
import pytest
from httpx_sse import connect_sse

from nexus_sse.models import Run, RunEvent
from tests.live import ServerProcess
from tests.redis_support import redis_overrides, require_redis
from tests.sse_helpers import take

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_sigterm_hands_streams_over_and_lets_runs_finish(django_db_setup, workflows, kind):
    require_redis()
    overrides = redis_overrides(SHUTDOWN_GRACE_SECONDS=20.0, ORPHAN_SECONDS=30.0)
    with ServerProcess(kind, overrides=overrides) as a, ServerProcess("uvicorn", overrides=overrides) as b:
        with httpx.Client(base_url=a.url, timeout=15) as ca, httpx.Client(base_url=b.url, timeout=15) as cb:
            run_id = ca.post(
                "/workflows/tokens/execute", json={"inputs": {"count": 60, "delay": 0.05}, "mode": "async"}
            ).json()["run_id"]
            seen, raw_tail = [], []
            with connect_sse(ca, "GET", f"/runs/{run_id}/events") as source:
                for event in source.iter_sse():
                    if event.data:
                        seen.append(event)
                        if len(seen) == 5:
                            a.proc.send_signal(signal.SIGTERM)
                    elif event.retry is not None and len(seen) >= 5:
                        raw_tail.append(event.retry)
            assert seen[-1].event not in ("complete", "error")  # handed over, not finished
            assert raw_tail == [500]  # the hint to come back soon
            refused = ca.post("/workflows/greet/execute", json={"inputs": {"name": "x"}})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            rest = take(cb, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": seen[-1].id})
        assert a.proc.wait(30) is not None  # it stopped once its run was done
    events = seen + rest
    assert rest[-1].event == "complete"
    archived = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    assert [int(e.id.split(":")[1]) for e in events] == archived  # nothing lost, nothing twice
    assert Run.objects.get(pk=run_id).status == "completed"
