"""nexus_sse.sse_response in a site's own view (project/views.py countdown), over a real socket: a
client that hangs up ends the generator (the bytes and keepalives are checked in process, in
test_sse_response_helper_inprocess.py)."""

import httpx
import pytest

from tests.sse_helpers import take, wait_for


@pytest.fixture
def client(live):
    with httpx.Client(base_url=live, timeout=10) as c:
        yield c


def test_a_client_disconnect_runs_the_generators_finally(client):
    before = client.get("/demo/countdown/stats").json()["finished_streams"]
    events = take(client, "GET", "/demo/countdown?start=50&pace=30", limit=1)
    assert events[0].json() == {"remaining": 50}
    # the generator was waiting 30 s for its next tick; only the disconnect can end it now
    wait_for(lambda: client.get("/demo/countdown/stats").json()["finished_streams"] == before + 1)
