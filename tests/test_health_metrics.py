"""Liveness, readiness and Prometheus metrics over a real socket."""

import re

import httpx
import pytest
from httpx_sse import connect_sse

from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, run_status, take, wait_for

TOKEN = {"Authorization": "Bearer metrics-secret"}


@pytest.fixture(scope="module")
def server(django_db_setup):
    overrides = {"METRICS_ENABLED": True, "METRICS_TOKEN": "metrics-secret", "ORPHAN_SECONDS": 30.0}
    with ServerProcess("uvicorn", overrides=overrides) as proc:
        yield proc


@pytest.fixture
def client(server, workflows):
    with httpx.Client(base_url=server.url, timeout=15) as c:
        yield c


def scrape(client) -> dict[str, float]:
    text = client.get("/metrics", headers=TOKEN).text
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(nexus_sse_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


def delta(before, after, key):
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_health_and_readiness(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "event_log": "ok"}


def test_readiness_fails_when_redis_is_unreachable(django_db_setup):
    overrides = {"EVENT_LOG": "redis", "EVENT_LOG_OPTIONS": {"URL": "redis://127.0.0.1:1/0"}}
    with (
        ServerProcess("uvicorn", overrides=overrides) as server,
        httpx.Client(base_url=server.url, timeout=15) as c,
    ):
        ready = c.get("/ready")
        assert c.get("/health").status_code == 200
    assert ready.status_code == 503 and ready.json()["checks"]["event_log"].startswith("unavailable")


def test_metrics_are_protected(client):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers=TOKEN).headers["content-type"].startswith("text/plain")


def test_metrics_follow_a_run_a_resume_and_a_cancel(client):
    before = scrape(client)
    events = take(
        client,
        "POST",
        "/workflows/tokens/execute",
        json={"inputs": {"count": 5, "delay": 0}},
        headers=ACCEPT_SSE,
    )
    after_run = scrape(client)
    assert delta(before, after_run, 'nexus_sse_runs_total{status="completed"}') == 1
    assert delta(before, after_run, 'nexus_sse_runs_started_total{workflow="tokens"}') == 1
    assert delta(before, after_run, "nexus_sse_events_appended_total") == len(events)
    assert delta(before, after_run, "nexus_sse_events_delivered_total") == len(events)
    assert delta(before, after_run, "nexus_sse_time_to_first_event_seconds_count") == 1
    assert delta(before, after_run, "nexus_sse_run_duration_seconds_count") == 1
    assert after_run["nexus_sse_open_streams"] == 0

    run_id = events[0].json()["run_id"]
    take(client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:2"})
    after_resume = scrape(client)
    assert delta(after_run, after_resume, "nexus_sse_resumes_total") == 1
    assert delta(after_run, after_resume, "nexus_sse_events_delivered_total") == len(events) - 2

    with connect_sse(client, "GET", "/workflows/slow/execute?seconds=30") as source:
        stream = source.iter_sse()
        slow_id = next(e for e in stream if e.data).json()["run_id"]
        assert scrape(client)["nexus_sse_open_streams"] == 1
    wait_for(
        lambda: (
            scrape(client).get("nexus_sse_disconnects_total", 0)
            > after_resume.get("nexus_sse_disconnects_total", 0)
        )
    )
    assert client.post(f"/runs/{slow_id}/cancel").status_code == 202
    wait_for(lambda: run_status(client, slow_id)["status"] == "cancelled")
    final = scrape(client)
    assert delta(after_resume, final, 'nexus_sse_runs_total{status="cancelled"}') == 1
    assert final["nexus_sse_open_streams"] == 0
