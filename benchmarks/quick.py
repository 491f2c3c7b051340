"""Quick figures for nexus_sse alone: SSE executions/s and time to first event of the demo workflows.

    python benchmarks/quick.py [--duration 5] [--repeat 3]

Starts each server (uvicorn, daphne) as its own process on a fresh SQLite file, drives it from a
separate load process (benchmarks/load.py), repeats each measurement, and writes the medians to
benchmarks/results/quick.md and quick.json. For the full comparison with baselines see run.py.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SERVERS = {
    "uvicorn": ["-m", "uvicorn", "project.asgi:application", "--lifespan", "off", "--no-access-log",
                "--log-level", "warning", "--host", "127.0.0.1", "--port", "{port}"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "project.asgi:application"],
}
CASES = [
    ("greet (1 node)", "/workflows/greet/execute", {"name": "x"}),
    ("chat (LLM agent, ~25 tokens)", "/workflows/chat/execute", {"message": "Hello!"}),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", default="1,20")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
           "NEXUS_BENCH_DB": os.path.join(tempfile.mkdtemp(), "bench.sqlite3")}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    samples = {}
    for rep in range(args.repeat):
        for server, argv in SERVERS.items():  # interleaved: each repeat runs every contender once
            port = free_port()
            proc = subprocess.Popen([sys.executable, *[a.format(port=port) for a in argv]], cwd=ROOT, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_listening(port, proc)
                for name, path, inputs in CASES:
                    for c in levels:
                        out = subprocess.run(
                            [sys.executable, "benchmarks/load.py", "--port", str(port), "--path", path,
                             "--inputs", json.dumps(inputs), "--concurrency", str(c), "--duration", str(args.duration)],
                            cwd=ROOT, capture_output=True, text=True, check=True)
                        samples.setdefault((server, name, c), []).append(json.loads(out.stdout))
            finally:
                proc.terminate()
                proc.wait()
    rows = []
    for (server, name, c), runs in samples.items():
        med = lambda key: statistics.median(r[key] for r in runs if r[key] is not None)  # noqa: E731
        rows.append({"server": server, "workflow": name, "concurrency": c,
                     "executions_per_s": round(med("executions_per_s")), "ttfe_p50_ms": round(med("ttfe_p50_ms"), 2),
                     "ttfe_p99_ms": round(med("ttfe_p99_ms"), 2), "errors": sum(r["errors"] for r in runs)})
    import django

    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": f"{os.cpu_count()} cores, "
            f"{platform.machine()}, {platform.system()}", "python": platform.python_version(),
            "django": django.get_version(), "repeats": args.repeat, "duration_s": args.duration,
            "command": "python benchmarks/quick.py " + " ".join(sys.argv[1:])}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "quick.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [f"# nexus_sse quick figures ({meta['date']})", "",
             f"{meta['machine']}; Python {meta['python']}, Django {meta['django']}; SQLite; medians of "
             f"{args.repeat} runs of {args.duration:g} s; load from a separate process (benchmarks/load.py).", "",
             "| server | workflow | concurrency | SSE executions/s | first event p50 (ms) | p99 (ms) | errors |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['server']} | {r['workflow']} | {r['concurrency']} | {r['executions_per_s']} | {r['ttfe_p50_ms']} "
              f"| {r['ttfe_p99_ms']} | {r['errors']} |" for r in rows]
    (RESULTS / "quick.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
