"""The measurements that need more than one load process: idle streams, fan-out, slow reader, wrk."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.contenders import LOAD_CPUS, Server, pinned


def http(
    server: Server, method: str, path: str, body: dict | None = None, headers: dict | None = None
) -> bytes:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def warm(server: Server) -> None:
    """A second of short executions, so first-use allocations are not counted as per-stream cost."""
    server.load("exec", "one", concurrency=4, duration=1.0, warmup=0.2)


def idle_cost(server: Server, stages: tuple[int, ...]) -> dict[int, dict]:
    """Server RSS and threads per idle open stream, with ``stages`` streams open (one process, growing)."""
    warm(server)
    rss0, threads0 = server.stat()
    holder = subprocess.Popen(
        server.load_argv("idle", "idle", n=",".join(map(str, stages))),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    out = {}
    try:
        for n in stages:
            line = holder.stdout.readline()
            if not line.startswith('{"ready"'):
                raise RuntimeError(f"{server.name}: {n} idle streams did not open")
            settle(server)
            rss, threads = server.stat()
            out[n] = {
                "kb_per_stream": (rss - rss0) / n / 1024,
                "threads_before": threads0,
                "threads_open": threads,
            }
            holder.stdin.write("\n")
            holder.stdin.flush()
    finally:
        holder.stdin.close()
        holder.wait(120)
    return out


def settle(server: Server, deadline: float = 3.0) -> None:
    """Wait until the server's RSS stops moving (allocations after each stream's first event)."""
    end = time.monotonic() + deadline
    last = server.stat()[0]
    while time.monotonic() < end:
        time.sleep(0.25)  # sampling interval of the RSS poll
        now = server.stat()[0]
        if abs(now - last) < 64 * 1024:
            return
        last = now


def fanout(server: Server, tokens: int, subscribers: int) -> dict:
    """One run, ``subscribers`` clients attached before it streams ``tokens`` events."""
    gate = Path(tempfile.mkdtemp()) / "gate"
    run = json.loads(
        http(
            server,
            "POST",
            "/workflows/bench_gated/execute",
            {"inputs": {"n": tokens, "gate": str(gate)}, "mode": "async"},
        )
    )
    server.paths["fanout"] = f"/runs/{run['run_id']}/events"
    return server.load("fanout", "fanout", n=subscribers, gate=gate, expect=tokens)


def run_finished(server: Server, run_id: str, deadline: float = 120) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if json.loads(http(server, "GET", f"/runs/{run_id}"))["status"] not in ("pending", "running"):
            return
        time.sleep(0.1)  # polling the run's status with a deadline
    raise RuntimeError(f"run {run_id} did not finish")


def slow_reader(server: Server, length: int, duration: float, rate: int, drain: float = 10.0) -> dict:
    """Server RSS while one client reads a ``length``-event stream at ``rate`` bytes/s.

    For nexus_sse the same run is first made with nobody reading it (mode async): its growth is the
    run's own event log, so what the slow reader adds on top is what the server buffers for it.
    """
    warm(server)
    out: dict = {}
    if server.nexus:
        rss0 = server.stat()[0]
        run = json.loads(
            http(
                server, "POST", "/workflows/bench_tokens/execute", {"inputs": {"n": length}, "mode": "async"}
            )
        )
        run_finished(server, run["run_id"])
        settle(server, 1.5)
        out["log_only_growth_mb"] = (server.stat()[0] - rss0) / 2**20
    result = server.load("slow", "tokens", length, duration=duration, rate=rate, drain_seconds=drain)
    out.update(result)
    out["reader_growth_mb"] = result["rss_peak_growth_mb"] - (out.get("log_only_growth_mb") or 0.0)
    ended_early = result["disconnected"] or result["cut_off"]
    out["resumed"] = resumed(server, result) if ended_early and server.nexus else None
    return out


def resumed(server: Server, result: dict) -> bool:
    """After a hang-up, does Last-Event-ID pick up exactly after the last event read?"""
    last = result.get("last_id") or ""
    if ":" not in last:
        return False
    run_id, seq = last.rsplit(":", 1)
    try:
        body = http(
            server,
            "GET",
            f"/runs/{run_id}/events",
            headers={"Last-Event-ID": last, "Accept": "text/event-stream"},
        )
    except OSError:
        return False
    first = re.search(rb"^id: \S+:(\d+)$", body, re.MULTILINE)
    return bool(first and int(first.group(1)) == int(seq) + 1 and b"event: complete" in body)


def wrk(server: Server, key: str, concurrency: int, duration: float) -> dict | None:
    """The same executions measured by wrk (compiled, Debian's package), to show the Python client is not
    the bottleneck; None when wrk is not installed."""
    binary = shutil.which("wrk") or install_wrk()
    if not binary:
        return None
    path, body = server.target(key)
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Accept"] = "text/event-stream"\n'
    )
    argv = [
        binary,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "-s",
        str(script),
        f"http://127.0.0.1:{server.port}{path}",
    ]
    out = subprocess.run(
        pinned(LOAD_CPUS, argv), check=False, capture_output=True, text=True, timeout=duration + 60
    )
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    return {
        "executions_per_s": float(rate.group(1)) if rate else None,
        "errors": int(errors.group(1)) if errors else 0,
        "command": " ".join([*argv[:-3], "post.lua", argv[-1]]),
    }


def curl_tokens(server: Server, length: int) -> dict | None:
    """One token stream read by curl (compiled): its events/s next to the Python reader's."""
    binary = shutil.which("curl")
    if not binary:
        return None
    path, body = server.target("tokens", length)
    argv = [
        binary,
        "-sS",
        "-N",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Accept: text/event-stream",
        "--data-binary",
        body,
        "-w",
        "%{time_pretransfer} %{time_total}",
        f"http://127.0.0.1:{server.port}{path}",
    ]
    out = subprocess.run(pinned(LOAD_CPUS, argv), check=False, capture_output=True, text=True, timeout=120)
    if out.returncode:
        return None
    sent, total = (float(x) for x in out.stdout.split())
    return {"events_per_s": length / (total - sent)}


def install_wrk() -> str | None:
    """wrk from Debian's packages, when we are root and it is missing (once per run)."""
    global _wrk_tried
    if _wrk_tried or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    _wrk_tried = True
    print("installing wrk (Debian package) for the cross-check ...", flush=True)
    for argv in (
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"],
    ):
        subprocess.run(argv, check=False, capture_output=True, timeout=300)
        if shutil.which("wrk"):
            return shutil.which("wrk")
    print("wrk did not install: the compiled-client cross-check is skipped", flush=True)
    return None


_wrk_tried = False
