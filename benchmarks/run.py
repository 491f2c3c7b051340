"""The benchmark suite: nexus_sse against a bare Django view, sse-starlette and Kailash Nexus.

    python benchmarks/run.py [--quick]        (make bench)

Each server is its own process, driven by a separate load process (benchmarks/load.py: raw asyncio
sockets, so the client is not the bottleneck). Contenders are interleaved and each measurement repeated
(3 times; once with --quick); medians and ratios go to benchmarks/results/latest.md and latest.json with
the machine, versions and commands.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
VENVS = BENCH / ".venvs"
RESULTS = BENCH / "results"
PY = sys.executable
ONE_BODY = '{"inputs": {}, "mode": "stream"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_venv(name: str, packages: list[str], python: str) -> str | None:
    """A separate virtual environment for a contender; None (with a message) if it will not install."""
    venv = VENVS / name
    marker = venv / ".installed"
    if not marker.exists():
        VENVS.mkdir(exist_ok=True)
        try:
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], check=True, timeout=900)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"skipping {name}: its environment did not install ({exc})", flush=True)
            return None
        marker.touch()
    return str(venv / "bin" / "python")


def python312() -> str:
    for candidate in sorted(Path(os.popen("pyenv root 2>/dev/null").read().strip() or "/nonexistent").glob(
            "versions/3.1[23].*/bin/python3.1[23]")):
        return str(candidate)
    return shutil.which("python3") or PY


class Server:
    """A contender: a command that serves on ``port`` and the paths of its endpoints."""

    def __init__(self, name: str, argv: list[str], paths: dict[str, str], env: dict | None = None,
                 bodies: dict | None = None) -> None:
        self.name, self.argv, self.paths, self.env = name, argv, paths, env or {}
        self.bodies = bodies or {}
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.port = free_port()
        argv = [a.format(port=self.port, mcp=free_port()) for a in self.argv]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **self.env},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def stat(self) -> tuple[int, int]:
        """(RSS bytes, threads) of the server process."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["Threads"])

    def load(self, mode: str, path_key: str, **kw) -> dict:
        body = self.bodies.get(path_key, ONE_BODY)
        argv = [PY, str(BENCH / "load.py"), mode, "--port", str(self.port), "--path", self.paths[path_key],
                "--body", body, *[f"--{k}={v}" for k, v in kw.items()]]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise RuntimeError(f"{self.name} {mode}: {out.stderr[-500:]}")
        return json.loads(out.stdout.splitlines()[-1])


def contenders(db: str) -> list[Server]:
    env = {"DJANGO_SETTINGS_MODULE": "benchmarks.settings", "NEXUS_BENCH_DB": db, "PYTHONPATH": str(ROOT)}
    nexus_paths = {"one": "/workflows/bench_one/execute", "tokens": "/workflows/bench_tokens/execute",
                   "idle": "/workflows/bench_idle/execute"}
    bodies = {"tokens": '{"inputs": {"n": %d}, "mode": "stream"}'}
    uvicorn = [PY, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
               "--lifespan", "off", "--no-access-log", "--log-level", "warning", "--backlog", "4096"]
    daphne = [PY, "-m", "daphne", "-e", "tcp:port={port}:interface=127.0.0.1:backlog=4096", "project.asgi:application"]
    baseline_paths = {"one": "/baseline/one", "tokens": "/baseline/tokens?n=%d", "idle": "/baseline/idle"}
    servers = [
        Server("nexus_sse (uvicorn)", uvicorn, nexus_paths, env, bodies),
        Server("nexus_sse (daphne)", daphne, nexus_paths, env, bodies),
        Server("A: bare Django view (uvicorn)", uvicorn, baseline_paths, env),
    ]
    starlette = ensure_venv("starlette", ["sse-starlette", "uvicorn[standard]"], python312())
    if starlette:
        servers.append(Server("B: sse-starlette (uvicorn)", [starlette, "-m", "uvicorn", "benchmarks.starlette_app:app",
                              "--host", "127.0.0.1", "--port", "{port}", "--no-access-log", "--log-level", "warning",
                              "--backlog", "4096"], {"one": "/one", "tokens": "/tokens?n=%d", "idle": "/idle"},
                              {"PYTHONPATH": str(ROOT)}))
    kailash = ensure_venv("kailash", ["kailash-nexus"], python312())
    if kailash:
        servers.append(Server("Kailash Nexus", [kailash, str(BENCH / "kailash_app.py"), "{port}", "{mcp}"],
                              {"one": "/workflows/one/execute"}))
    else:
        print("Kailash Nexus is skipped: kailash-nexus did not install", flush=True)
    return servers


def fill(server: Server, key: str, n: int) -> None:
    if "%d" in server.paths.get(key, ""):
        server.paths = {**server.paths, key: server.paths[key] % n}
    if "%d" in server.bodies.get(key, ""):
        server.bodies = {**server.bodies, key: server.bodies[key] % n}


def idle_cost(server: Server, n: int) -> dict:
    rss0, threads0 = server.stat()
    argv = [PY, str(BENCH / "load.py"), "idle", "--port", str(server.port), "--path", server.paths["idle"],
            "--body", ONE_BODY, "--n", str(n)]
    holder = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    if not line.startswith('{"ready"'):
        holder.kill()
        raise RuntimeError(f"{server.name}: idle streams did not open")
    time.sleep(1.0)  # let the server settle (allocations after the first event) before measuring
    rss1, threads1 = server.stat()
    holder.stdin.close()
    holder.wait(60)
    return {"kb_per_stream": (rss1 - rss0) / n / 1024, "threads_before": threads0, "threads_open": threads1}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one repeat, short runs, no idle-5000/slow scenarios")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and load processes inherit it
    repeats = 1 if args.quick else 3
    duration = 2.0 if args.quick else 5.0
    tokens_n = 5000 if args.quick else 20000
    db = os.path.join(tempfile.mkdtemp(), "bench.sqlite3")
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True,
                   env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "NEXUS_BENCH_DB": db})
    servers = contenders(db)
    for s in servers:
        fill(s, "tokens", tokens_n)
    samples: dict[tuple[str, str], list[dict]] = {}
    began = time.monotonic()
    for rep in range(repeats):
        for server in servers:  # interleaved: every contender once per repeat
            server.start()
            try:
                for c in (1, 20):
                    samples.setdefault((server.name, f"exec c={c}"), []).append(
                        server.load("exec", "one", concurrency=c, duration=duration))
                if "tokens" in server.paths:
                    samples.setdefault((server.name, "tokens"), []).append(server.load("tokens", "tokens"))
                if "idle" in server.paths:
                    for n in ((1000,) if args.quick else (1000, 5000)):
                        samples.setdefault((server.name, f"idle {n}"), []).append(idle_cost(server, n))
                if server.name.startswith("nexus_sse"):
                    samples.setdefault((server.name, "fanout"), []).append(fanout(server, tokens_n))
                    if not args.quick:
                        samples.setdefault((server.name, "slow"), []).append(slow_reader(server))
            finally:
                server.stop()
        print(f"repeat {rep + 1}/{repeats} done after {time.monotonic() - began:.0f}s", flush=True)
    write(samples, servers, args, time.monotonic() - began)


def fanout(server: Server, n: int) -> dict:
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/workflows/bench_tokens/execute",
                                     data=json.dumps({"inputs": {"n": n}, "mode": "async"}).encode(),
                                     headers={"Content-Type": "application/json"})
    run_id = json.loads(urllib.request.urlopen(request).read())["run_id"]
    server.paths["fanout"] = f"/runs/{run_id}/events"
    return server.load("fanout", "fanout", n=100)


def slow_reader(server: Server) -> dict:
    """RSS growth of the server while one client reads a 200,000-event stream at 1 KB/s for 15 s."""
    fill(server, "slowtokens", 0)
    server.paths["slow"] = server.paths["tokens"]
    server.bodies["slow"] = '{"inputs": {"n": 200000}, "mode": "stream"}'
    rss0, _ = server.stat()
    result = server.load("slow", "slow", duration=15, rate=1024)
    rss1, _ = server.stat()
    return {**result, "rss_growth_mb": (rss1 - rss0) / 2**20}


def med(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def write(samples: dict, servers: list[Server], args: argparse.Namespace, seconds: float) -> None:
    import django

    names = [s.name for s in servers]
    table = {name: {} for name in names}
    for (name, scenario), runs in samples.items():
        row = table[name]
        if scenario.startswith("exec"):
            row[f"{scenario} exec/s"] = med(runs, "executions_per_s")
            if scenario == "exec c=1":
                row["ttfe p50 ms"], row["ttfe p99 ms"] = med(runs, "ttfe_p50_ms"), med(runs, "ttfe_p99_ms")
            row["errors"] = row.get("errors", 0) + sum(r["errors"] for r in runs)
        elif scenario == "tokens":
            row["tokens events/s"] = med(runs, "events_per_s")
        elif scenario.startswith("idle"):
            n = scenario.split()[1]
            row[f"KB/stream @{n}"] = med(runs, "kb_per_stream")
            row[f"threads @{n}"] = med(runs, "threads_open")
        elif scenario == "fanout":
            row["fan-out events/s"], row["fan-out lag s"] = med(runs, "events_per_s"), med(runs, "lag_s")
        elif scenario == "slow":
            row["slow reader RSS +MB"] = med(runs, "rss_growth_mb")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "seconds": round(seconds),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
            "python": platform.python_version(), "django": django.get_version(),
            "repeats": 1 if args.quick else 3, "command": " ".join(["python benchmarks/run.py", *sys.argv[1:]]),
            "servers": {s.name: " ".join(s.argv) for s in servers}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"meta": meta, "results": table}, indent=2) + "\n")
    columns = sorted({k for row in table.values() for k in row}, key=ORDER.index)
    lines = [f"# Benchmarks — {meta['date']}", "",
             f"{meta['machine']}; Python {meta['python']}, Django {meta['django']}; SQLite; medians of "
             f"{meta['repeats']} interleaved runs; load from separate processes (benchmarks/load.py). "
             f"Took {meta['seconds']} s. Command: `{meta['command']}`.", "",
             "| contender | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(fmt(table[name].get(c)) for c in columns) + " |")
    lines += ["", "## Targets", ""] + targets(table)
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


ORDER = ["exec c=1 exec/s", "exec c=20 exec/s", "ttfe p50 ms", "ttfe p99 ms", "tokens events/s", "KB/stream @1000",
         "threads @1000", "KB/stream @5000", "threads @5000", "fan-out events/s", "fan-out lag s",
         "slow reader RSS +MB", "errors"]


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def targets(table: dict) -> list[str]:
    nexus, base_a = table.get("nexus_sse (uvicorn)", {}), table.get("A: bare Django view (uvicorn)", {})
    kailash = table.get("Kailash Nexus", {})
    out = []

    def check(label: str, ok: bool | None, detail: str) -> None:
        mark = "—" if ok is None else ("met" if ok else "**missed**")
        out.append(f"- {label}: {mark} ({detail})")

    def ratio(a, b):
        return a / b if a and b else None

    r = ratio(nexus.get("exec c=20 exec/s"), kailash.get("exec c=20 exec/s"))
    check("executions/s c=20 ≥ 5× Kailash Nexus", None if r is None else r >= 5, f"{fmt(r)}×")
    r = ratio(nexus.get("exec c=20 exec/s"), base_a.get("exec c=20 exec/s"))
    check("executions/s c=20 ≥ 50% of baseline A", None if r is None else r >= 0.5, f"{fmt(r and 100 * r)}%")
    t, k = nexus.get("ttfe p50 ms"), kailash.get("ttfe p50 ms")
    check("time to first event p50 ≤ 3 ms and ≤ Nexus'", None if t is None else (t <= 3 and (k is None or t <= k)),
          f"{fmt(t)} ms vs Nexus {fmt(k)} ms")
    r = ratio(nexus.get("tokens events/s"), base_a.get("tokens events/s"))
    check("token stream events/s ≥ 50% of baseline A", None if r is None else r >= 0.5, f"{fmt(r and 100 * r)}%")
    kb = nexus.get("KB/stream @5000") or nexus.get("KB/stream @1000")
    check("RSS per idle stream ≤ 25 KB", None if kb is None else kb <= 25, f"{fmt(kb)} KB")
    th1 = nexus.get("threads @5000") or nexus.get("threads @1000")
    check("threads flat as streams grow", None if th1 is None else th1 <= 20, f"{fmt(th1)} threads with streams open")
    lag = nexus.get("fan-out lag s")
    check("fan-out: no subscriber lags > 1 s", None if lag is None else lag <= 1, f"{fmt(lag)} s spread")
    return out


if __name__ == "__main__":
    main()
