"""A run that emits in a tight loop does not hold the event loop: other requests are served meanwhile."""

import httpx

from tests.sse_helpers import run_status


def test_a_run_emitting_a_burst_of_tokens_does_not_stall_other_requests(live):
    with httpx.Client(base_url=live, timeout=30) as client:
        # 200,000 tokens with no delay: the node never waits on anything itself (seconds of work)
        started = client.post("/workflows/tokens/execute",
                              json={"inputs": {"count": 200000, "delay": 0}, "mode": "async"})
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        assert client.get("/health").status_code == 200
        # Served while the burst goes on, not after it: the run is still running.
        assert run_status(client, run_id)["status"] == "running"
        client.post(f"/runs/{run_id}/cancel")
