"""The ASGI fast path (nexus_sse/asgi.py) under real servers: what only a server shows (the scope it
builds, a chunked body it decodes, no thread per idle stream, --root-path). Which requests it serves
and that it answers like Django are checked in process, in test_fast_path_inprocess.py.

Two servers of each kind run side by side: the demo application with the fast path on, and the same
application with ``FAST_PATH = False`` (everything through Django's handler and middleware). The demo
site's SecurityMiddleware (the outermost) marks every response that went through Django with
X-Content-Type-Options: that header tells which path served a request.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, take, wait_for

OVERRIDES = {"WORKFLOW_CACHE_SECONDS": 0.0, "MAX_BODY_BYTES": 2048, "MAX_STREAMS_PER_USER": 1}


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def servers(request, django_db_setup):
    with (
        ServerProcess(request.param, overrides=OVERRIDES) as fast,
        ServerProcess(request.param, overrides={**OVERRIDES, "FAST_PATH": False}) as django,
    ):
        yield fast, django


@pytest.fixture
def fast(servers, workflows):
    return servers[0]


def served_by_django(response: httpx.Response) -> bool:
    return response.headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize(
    "headers",
    [
        {"Cookie": "anything=1"},  # a session may be in there: Django authenticates
        {"Origin": "https://allowed.example"},  # CORS is django-cors-headers' job
    ],
)
def test_requests_with_cookies_or_an_origin_go_through_django(fast, headers):
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        response = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=headers)
    assert response.status_code == 200 and served_by_django(response)
    if "Origin" in headers:
        assert response.headers["access-control-allow-origin"] == "https://allowed.example"


def test_a_chunked_body_is_read_whole_and_a_large_one_refused(fast):
    def chunks(parts):
        yield from parts

    with httpx.Client(base_url=fast.url, timeout=10) as client:
        ok = client.post(
            "/workflows/greet/execute",
            content=chunks([b'{"inputs": ', b'{"name": "Bo"}}']),
            headers={"Content-Type": "application/json"},
        )
        assert ok.status_code == 200 and ok.json()["result"] == {"result": "Hello, Bo!"}
        big = client.post(
            "/workflows/greet/execute",
            content=chunks([b'{"inputs": {"name": "', b"x" * 3000, b'"}}']),
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413 and big.json()["error_type"] == "ValidationError"


def server_threads(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def test_idle_streams_hold_no_threads_and_a_closed_one_frees_its_slot(fast):
    # MAX_STREAMS_PER_USER is 1 here: a second stream is refused until the first one's slot is freed,
    # which happens only when the server has noticed the disconnect and cleaned up.
    opened = []
    try:
        before = server_threads(fast)
        with httpx.Client(base_url=fast.url, timeout=10) as client:
            first = take(client, "GET", "/workflows/slow/execute?seconds=30", limit=1)
            assert first[0].event == "start"
        # the client is closed: its stream is gone
        with httpx.Client(base_url=fast.url, timeout=10) as client:

            def second_accepted():
                response = client.post(
                    "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=ACCEPT_SSE
                )
                return response.status_code == 200

            wait_for(second_accepted)
        # Idle streams from many clients (one each: the cap is per IP, so use raw sockets on
        # 127.0.0.x addresses) must not add a thread each.
        for i in range(2, 32):
            sock = socket.create_connection(("127.0.0.1", fast.port), source_address=(f"127.0.0.{i}", 0))
            opened.append(sock)
            sock.sendall(b"GET /workflows/slow/execute?seconds=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while b"event: start" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert b" 200 " in received.split(b"\r\n", 1)[0]
        assert server_threads(fast) <= before + 3
    finally:
        for sock in opened:
            sock.close()


def test_the_fast_path_serves_under_a_root_path(django_db_setup, workflows):
    # uvicorn --root-path: a proxy strips /mount before the request reaches us; URLs we hand out carry it.
    with (
        ServerProcess("uvicorn", overrides=OVERRIDES, args=("--root-path", "/mount")) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        started = client.post("/workflows/greet/execute", json={"inputs": {"name": "R"}, "mode": "async"})
        assert started.status_code == 202 and not served_by_django(started)
        body = started.json()
        assert body["events_url"] == f"/mount/runs/{body['run_id']}/events"
        events = take(client, "GET", body["events_url"].removeprefix("/mount"))
    assert events[-1].event == "complete" and events[-1].json()["result"] == {"result": "Hello, R!"}
