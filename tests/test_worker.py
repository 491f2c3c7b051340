"""The worker tier: runs executed by a separate Django tasks worker; the web process only streams."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from httpx_sse import connect_sse

from nexus_sse.models import Run, RunEvent
from tests.live import ROOT, ServerProcess
from tests.redis_support import redis_overrides, require_redis
from tests.sse_helpers import ACCEPT_SSE, take

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def overrides(django_db_setup):
    require_redis()
    return redis_overrides(EXECUTOR="tasks", KEEPALIVE_SECONDS=0.3, ORPHAN_SECONDS=30.0)


def start_worker(overrides) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NEXUS_TEST_SERVER": "1",
        "NEXUS_TEST_OVERRIDES": __import__("json").dumps(overrides),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            "nexus_sse",
            "--interval",
            "0.05",
            "--no-startup-delay",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def web(overrides):
    with ServerProcess("uvicorn", overrides=overrides) as proc:
        yield proc


def test_runs_execute_in_the_worker_and_stream_from_the_web_process(web, overrides, workflows):
    worker = start_worker(overrides)
    try:
        with httpx.Client(base_url=web.url, timeout=15) as client:
            events = take(
                client,
                "POST",
                "/workflows/tokens/execute",
                json={"inputs": {"count": 20, "delay": 0.01}},
                headers=ACCEPT_SSE,
            )
            result = client.post("/workflows/greet/execute", json={"inputs": {"name": "W"}}).json()
    finally:
        worker.terminate()
        worker.wait(10)
    run_id = events[0].json()["run_id"]
    assert [e.id for e in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]
    assert events[-1].event == "complete" and events[-1].json()["result"]["text"].startswith("t0 t1")
    run = Run.objects.get(pk=run_id)
    assert run.status == "completed"
    assert run.executor.split(":")[1] == str(worker.pid)
    assert result["result"] == {"result": "Hello, W!"}
    assert RunEvent.objects.filter(run_id=run_id).count() == len(events)


def test_a_killed_worker_ends_the_stream_with_an_error_and_fails_the_run(web, overrides, workflows):
    worker = start_worker(overrides)
    try:
        with httpx.Client(base_url=web.url, timeout=15) as client:
            events, killed_at = [], None
            with connect_sse(client, "GET", "/workflows/slow/execute?seconds=60") as source:
                for event in source.iter_sse():
                    if not event.data:
                        continue
                    events.append(event)
                    if event.event == "progress" and killed_at is None:  # the worker has it
                        worker.send_signal(signal.SIGKILL)
                        killed_at = time.monotonic()
            assert killed_at is not None, f"the run ended before the worker started it: {events[-1].data}"
            assert events[-1].event == "error" and events[-1].json()["error"] == "interrupted"
            assert time.monotonic() - killed_at < 10  # heartbeat 1 s + keepalive 0.3 s, with margin
    finally:
        worker.kill()
        worker.wait(10)
    run = Run.objects.get(pk=events[0].json()["run_id"])
    assert (run.status, run.error_type) == ("failed", "InternalError")


def test_a_queued_run_can_be_cancelled_before_a_worker_takes_it(web, workflows):
    with httpx.Client(base_url=web.url, timeout=15) as client:  # no worker running
        run_id = client.post(
            "/workflows/greet/execute", json={"inputs": {"name": "q"}, "mode": "async"}
        ).json()["run_id"]
        assert client.get(f"/runs/{run_id}").json()["status"] == "pending"
        assert client.post(f"/runs/{run_id}/cancel").json()["status"] == "cancelled"
        events = take(client, "GET", f"/runs/{run_id}/events")
    assert [e.event for e in events] == ["start", "error"] and events[-1].json()[
        "error_type"
    ] == "CancelledError"
