"""The shipped nginx config (deploy/nginx-nexus.conf) in front of two server processes."""

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.live import ROOT, ServerProcess, free_port
from tests.redis_support import redis_overrides, require_redis
from tests.services import missing
from tests.sse_helpers import ACCEPT_SSE, take

pytestmark = pytest.mark.redis


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        missing("nginx is missing: apt-get install nginx (`make test` does it)")
    return path


@pytest.fixture(scope="module")
def proxy(django_db_setup):
    binary = nginx_binary()
    require_redis()
    overrides = redis_overrides()
    with (
        ServerProcess("uvicorn", overrides=overrides) as a,
        ServerProcess("daphne", overrides=overrides) as b,
        tempfile.TemporaryDirectory(prefix="nexus-nginx-") as tmp,  # removed after the module
    ):
        port = free_port()
        site = (ROOT / "deploy" / "nginx-nexus.conf").read_text()
        site = site.replace("127.0.0.1:8001", f"127.0.0.1:{a.port}").replace(
            "127.0.0.1:8002", f"127.0.0.1:{b.port}"
        )
        site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        prefix = Path(tmp)
        (prefix / "logs").mkdir()
        (prefix / "site.conf").write_text(site)
        (prefix / "nginx.conf").write_text(f"""
            worker_processes 1;
            pid {prefix}/nginx.pid;
            error_log {prefix}/logs/error.log warn;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
                fastcgi_temp_path {prefix}/fastcgi; uwsgi_temp_path {prefix}/uwsgi;
                scgi_temp_path {prefix}/scgi;
                include {prefix}/site.conf;
            }}""")
        user = "root" if os.geteuid() == 0 else None
        args = [
            binary,
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-g",
            "daemon off;" + (f" user {user};" if user else ""),
        ]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        try:  # (an nginx that does not answer in time is stopped too, before its directory goes)
            while True:  # wait until nginx accepts (it prints nothing when ready)
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        output = process.stdout.read().decode() if process.poll() is not None else ""
                        raise RuntimeError(f"nginx did not start: {output}") from None
            yield url
        finally:
            process.terminate()
            process.wait(10)


def test_events_arrive_one_by_one_through_nginx(proxy, workflows):
    arrivals = []
    with (
        httpx.Client(base_url=proxy, timeout=15) as client,
        connect_sse(
            client,
            "POST",
            "/workflows/tokens/execute",
            headers=ACCEPT_SSE,
            json={"inputs": {"count": 6, "delay": 0.2}},
        ) as source,
    ):
        assert source.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        for event in source.iter_sse():
            if event.event == "token":
                arrivals.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(arrivals) == 6
    assert all(0.12 < gap < 0.4 for gap in gaps), gaps  # about 200 ms each, not one batch at the end


def test_resume_through_nginx_lands_on_either_process(proxy, workflows):
    with httpx.Client(base_url=proxy, timeout=15) as client:
        first = take(
            client,
            "POST",
            "/workflows/tokens/execute",
            limit=3,
            headers=ACCEPT_SSE,
            json={"inputs": {"count": 20, "delay": 0.01}},
        )
        run_id = first[0].json()["run_id"]
        rest = take(client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": first[-1].id})
    ids = [e.id for e in first + rest]
    assert ids == [f"{run_id}:{i}" for i in range(1, len(ids) + 1)] and rest[-1].event == "complete"
