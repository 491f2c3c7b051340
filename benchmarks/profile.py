"""Where nexus_sse spends its time and memory, under the benchmark's load (not part of make bench).

    python benchmarks/profile.py cpu [--workflow one] [--concurrency 20] [--seconds 8]
    python benchmarks/profile.py memory [--streams 1000]

cpu: py-spy samples the server (uvicorn, one process) while load.py drives it; prints the functions
with the most samples, by own time and including callees. Needs py-spy (pip install py-spy).
memory: the server traces allocations (tracemalloc, benchmark site only) while idle streams are open;
prints the source lines that hold the most memory per stream.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.contenders import PY, ROOT, build
from benchmarks.scenarios import settle, warm


def server(db: str, tracing: bool = False):
    nexus = next(s for s in build(db, skip_peers=True)[0] if s.name == "nexus_sse (uvicorn)")
    if tracing:
        nexus.env = {**nexus.env, "NEXUS_BENCH_TRACEMALLOC": "1"}
    return nexus


def migrate() -> str:
    db = str(Path(tempfile.mkdtemp(prefix="nexus-profile-")) / "bench.sqlite3")
    subprocess.run(
        [PY, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "NEXUS_BENCH_DB": db},
    )
    return db


def cpu(args) -> None:
    spy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    nexus = server(migrate()).start()
    raw = Path(tempfile.mkdtemp()) / "profile.txt"
    try:
        warm(nexus)
        recorder = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(nexus.proc.pid),
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds) + 1),
                "--output",
                str(raw),
                "--nonblocking",
                "--gil",
            ],  # only the thread holding the GIL: where CPU goes
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        figures = nexus.load(
            "exec", args.workflow, concurrency=args.concurrency, duration=args.seconds, warmup=0.5
        )
        recorder.wait(60)
    finally:
        nexus.stop()
    print(
        f"{args.workflow} c={args.concurrency}: {figures['executions_per_s']:.0f} executions/s, first event "
        f"p50 {figures['ttfe_p50_ms']:.2f} ms, server CPU {figures.get('server_cpu_pct', 0):.0f}%"
    )
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [short(f) for f in stack.split(";")]
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    ours = collections.Counter({f: n for f, n in inclusive.items() if "nexus_sse/" in f})
    for title, counter in (
        ("own time", own),
        ("including callees", inclusive),
        ("including callees, nexus_sse's own", ours),
    ):
        print(f"\ntop functions by {title} ({total} samples):")
        for frame, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f}%  {frame}")


def short(frame: str) -> str:
    """``func (/long/path/pkg/file.py:12)`` -> ``func (file.py:12)``.

    Keeps ``nexus_sse/`` in our own files.
    """
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    ours = "nexus_sse/" in where and "site-packages" not in where
    keep = "nexus_sse/" + where.split("nexus_sse/", 1)[-1] if ours else where.split("/")[-1]
    return f"{name} ({keep.rstrip(')')})"


def memory(args) -> None:
    nexus = server(migrate(), tracing=True).start()
    try:
        warm(nexus)
        base = f"http://127.0.0.1:{nexus.port}/bench/tracemalloc"
        urllib.request.urlopen(f"{base}?action=start").read()
        holder = subprocess.Popen(
            nexus.load_argv("idle", "idle", n=str(args.streams)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if not holder.stdout.readline().startswith('{"ready"'):
            raise RuntimeError("idle streams did not open")
        settle(nexus)
        time.sleep(0.5)  # past IDLE_RELEASE_SECONDS: every stream has given back its request thread
        top = json.loads(urllib.request.urlopen(f"{base}?action=diff&top={args.top}").read())
        holder.stdin.close()
        holder.wait(60)
    finally:
        nexus.stop()
    print(
        f"{args.streams} idle streams: traced Python memory +{top['total_kb'] / args.streams:.1f} KB per "
        f"stream, {top['tasks']} asyncio tasks in the server. By file (KB per stream):"
    )
    for row in top["files"][:12]:
        print(f"  {row['kb'] / args.streams:6.2f} KB  {row['where']}")
    print("By source line (KB per stream, allocations per stream):")
    for row in top["lines"]:
        print(f"  {row['kb'] / args.streams:6.2f} KB  {row['count'] / args.streams:6.1f}  {row['where']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["cpu", "memory"])
    parser.add_argument("--workflow", default="one", choices=["one", "greet", "chat"])
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    {"cpu": cpu, "memory": memory}[args.what](args)
