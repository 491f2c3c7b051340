"""nexus_sse.sse_response in a site's own view (project/views.py countdown), over a real socket."""

import httpx
import pytest

from tests.sse_helpers import take, wait_for


@pytest.fixture
def client(live):
    with httpx.Client(base_url=live, timeout=10) as c:
        yield c


def test_the_helper_streams_events_with_the_same_headers(client):
    with client.stream(
        "GET", "/demo/countdown?start=3&pace=0", headers={"Accept-Encoding": "gzip"}
    ) as response:
        body = b"".join(response.iter_raw())
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache" and response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers
    assert body == (
        b"retry: 3000\n\n"
        + b"".join(f'id: {n}\nevent: tick\ndata: {{"remaining": {n}}}\n\n'.encode() for n in (3, 2, 1, 0))
        + b'event: done\ndata: {"remaining": 0}\n\n'
    )


def test_the_helper_sends_keepalives_while_the_source_is_silent(client):
    with client.stream("GET", "/demo/countdown?start=1&pace=0.6&keepalive=0.1") as response:
        lines = list(response.iter_lines())
    assert lines.count(":keepalive") >= 3
    assert lines.index(":keepalive") > lines.index("event: tick")


def test_a_client_disconnect_runs_the_generators_finally(client):
    before = client.get("/demo/countdown/stats").json()["finished_streams"]
    events = take(client, "GET", "/demo/countdown?start=50&pace=30", limit=1)
    assert events[0].json() == {"remaining": 50}
    # the generator was waiting 30 s for its next tick; only the disconnect can end it now
    wait_for(lambda: client.get("/demo/countdown/stats").json()["finished_streams"] == before + 1)
