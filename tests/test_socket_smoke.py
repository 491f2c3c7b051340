"""The chat workflow streams to `complete` over a real socket, under uvicorn and daphne."""

import httpx
from httpx_sse import connect_sse


def test_post_stream_of_chat_reaches_complete(live):
    with (
        httpx.Client(base_url=live, timeout=10) as client,
        connect_sse(
            client,
            "POST",
            "/workflows/chat/execute",
            json={"inputs": {"message": "Hello!"}},
            headers={"Accept": "text/event-stream"},
        ) as source,
    ):
        events = [(e.event, e.json(), e.id) for e in source.iter_sse() if e.data]
    names = [name for name, _, _ in events]
    assert names[0] == "start" and names[-1] == "complete"
    assert "token" in names
    run_id = events[0][1]["run_id"]
    assert [eid for _, _, eid in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]
    reply = "".join(d["delta"] for n, d, _ in events if n == "token")
    assert events[-1][1]["result"]["response"] == reply
    assert 'You said: "Hello!"' in reply
