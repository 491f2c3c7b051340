"""The benchmark suite: nexus_sse against a bare Django view, sse-starlette and Kailash Nexus.

    python benchmarks/run.py            (make bench: every scenario, 3 repeats, ~12 minutes)
    python benchmarks/run.py --quick    (< 2 minutes: SSE executions/s and time to first event)

Each server is its own process, pinned to the first core; the load comes from separate processes
(benchmarks/load.py, raw asyncio sockets) pinned to the second. Contenders are interleaved, the order
rotated every repeat; medians and ratios go to benchmarks/results/latest.md and latest.json (quick:
quick.md, quick.json) with the machine, versions and commands.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import report, scenarios
from benchmarks.contenders import LOAD_CPUS, PY, ROOT, SERVER_CPUS, Server, build, fast_path_available

FULL = {
    "repeats": 3,
    "duration": 2.0,
    "warmup": 0.3,
    "tokens": 20000,
    "idle": (1000, 5000),
    "fanout_tokens": 10000,
    "subscribers": 100,
    "slow_length": 200000,
    "slow_seconds": 5.0,
    "drain_seconds": 10.0,
}
QUICK = {"repeats": 1, "duration": 2.0}
#: seconds ``make bench`` may take, venv creation included (issue 7: under 15 minutes). A repeat that would
#: end past it runs the throughput scenarios only, and the results say so.
BUDGET = 14 * 60


@contextlib.contextmanager
def timed(server: Server, phase: str):
    began = time.monotonic()
    yield
    print(f"    {server.name} {phase}: {time.monotonic() - began:.1f} s", flush=True)


def throughput(server: Server, cfg: dict, quick: bool, first: bool) -> dict[str, dict]:
    out = {}
    workflows = ["one"] + ([k for k in ("greet", "chat") if k in server.paths] if quick else [])
    for key in workflows:
        for c in (1, 20):
            out[f"exec {key} c={c}"] = server.load(
                "exec", key, concurrency=c, duration=cfg["duration"], warmup=cfg.get("warmup", 0.5)
            )
    if quick:
        return out
    if first and server.runs("wrk"):  # the compiled client's view of the same load, once per contender
        checked = scenarios.wrk(server, "one", 20, cfg["duration"])
        if checked:
            out["wrk one c=20"] = checked
    if "tokens" in server.paths:
        out["tokens"] = server.load("tokens", "tokens", cfg["tokens"], expect=cfg["tokens"])
        if first:
            checked = scenarios.curl_tokens(server, cfg["tokens"])
            if checked:
                out["curl tokens"] = checked
    if server.nexus and server.runs("fanout"):
        out["fanout"] = scenarios.fanout(server, cfg["fanout_tokens"], cfg["subscribers"])
    return out


def memory(server: Server, cfg: dict) -> dict[str, dict]:
    """Each in a fresh server process: what earlier scenarios left in memory does not count."""
    out = {}
    if "idle" in server.paths and server.runs("idle"):
        server.start()
        try:
            with timed(server, "idle streams"):
                for n, figures in scenarios.idle_cost(server, cfg["idle"]).items():
                    out[f"idle {n}"] = figures
        finally:
            server.stop()
    if "tokens" in server.paths and server.runs("slow"):
        server.start()
        try:
            with timed(server, "slow reader"):
                out["slow"] = scenarios.slow_reader(
                    server, cfg["slow_length"], cfg["slow_seconds"], 1024, cfg["drain_seconds"]
                )
        finally:
            server.stop()
    return out


class CpuMeter:
    """CPU the rest of the machine used while we ran: all busy CPU time (/proc/stat) minus this process's
    and its finished children's (every server and load process is a child, waited for)."""

    def __init__(self) -> None:
        self.wall, self.busy, self.ours = time.monotonic(), self.machine_busy(), self.own()

    @staticmethod
    def machine_busy() -> float:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def own() -> float:
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime

    def others_cores(self) -> float:
        """Average number of cores other processes kept busy since the start."""
        wall = time.monotonic() - self.wall
        return max(0.0, (self.machine_busy() - self.busy) - (self.own() - self.ours)) / wall


def main() -> None:
    started = time.monotonic()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="one repeat of the execution scenarios (< 2 minutes)"
    )
    parser.add_argument("--only", action="append", help="run only contenders whose name contains this")
    parser.add_argument("--repeats", type=int, help="override the number of repeats")
    parser.add_argument(
        "--caveat",
        default=os.environ.get("NEXUS_BENCH_CAVEAT"),
        help="a note on the conditions, printed with the results (or NEXUS_BENCH_CAVEAT)",
    )
    parser.add_argument(
        "--budget", type=int, default=BUDGET, help="seconds the whole run may take (default %(default)s)"
    )
    parser.add_argument("--output", help="results file name (default: latest, or quick with --quick)")
    args = parser.parse_args()
    cfg = {**FULL, **(QUICK if args.quick else {})}
    if args.repeats:
        cfg["repeats"] = args.repeats
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # servers and load processes inherit it
    if hard < 12000:
        print(f"warning: the open-file limit is {hard}; 5,000 streams need ~10,000 descriptors", flush=True)
    loadavg_start = os.getloadavg()
    meter = CpuMeter()
    db = os.path.join(tempfile.mkdtemp(prefix="nexus-bench-"), "bench.sqlite3")  # a fresh database per run
    subprocess.run(
        [PY, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "NEXUS_BENCH_DB": db},
    )
    servers, versions = build(
        db,
        skip_peers=bool(args.only)
        and not any(o in n for o in args.only for n in ("B: sse-starlette", "Kailash Nexus")),
    )
    if args.only:
        servers = [s for s in servers if any(o in s.name for o in args.only)]
    skipped = versions.pop("_skipped", [])
    samples: dict[tuple[str, str], list[dict]] = {}
    began = time.monotonic()
    make_started = os.environ.get("NEXUS_BENCH_STARTED")
    # the budget counts from `make bench`'s start when it is known (venv creation included)
    deadline = (
        time.monotonic() - (time.time() - int(make_started)) if make_started else started
    ) + args.budget
    memory_repeats, longest, failures = 0, 0.0, []
    for rep in range(cfg["repeats"]):
        rep_began = time.monotonic()
        with_memory = not args.quick and (rep == 0 or time.monotonic() + longest <= deadline)
        if not args.quick and not with_memory:
            print(
                f"repeat {rep + 1}: throughput scenarios only, or the run would pass its time budget "
                f"({args.budget} s)",
                flush=True,
            )
        memory_repeats += with_memory
        order = servers[rep % len(servers) :] + servers[: rep % len(servers)]
        for server in order:
            found: dict[str, dict] = {}
            try:  # a contender that fails loses this repeat's samples, the run goes on and says so
                server.start()
                try:
                    with timed(server, "throughput"):
                        found = throughput(server, cfg, args.quick, first=rep == 0)
                finally:
                    server.stop()
                if with_memory:
                    found.update(memory(server, cfg))
            except Exception as exc:
                message = f"{server.name}, repeat {rep + 1}: {type(exc).__name__}: {str(exc)[-300:]}"
                print(f"  FAILED {message}", flush=True)
                failures.append(message)
            for scenario, result in found.items():
                samples.setdefault((server.name, scenario), []).append(result)
            print(f"  {server.name}: done ({time.monotonic() - began:.0f} s)", flush=True)
        longest = max(longest, time.monotonic() - rep_began)
        print(f"repeat {rep + 1}/{cfg['repeats']} done after {time.monotonic() - began:.0f} s", flush=True)
    others = meter.others_cores()
    caveat = args.caveat
    if not caveat and (others > 0.2 or loadavg_start[0] > 1.0):
        caveat = (
            f"the machine was busy with other work: other processes kept {others:.2f} of its "
            f"{os.cpu_count()} cores busy on average during the run (load average {loadavg_start[0]:.2f} "
            "at the start). Absolute figures are noisy and low; compare contenders within this run only "
            "(they were interleaved, so each saw the same conditions on average)."
        )
    if failures:
        caveat = ((caveat + " ") if caveat else "") + "Failed (samples lost): " + "; ".join(failures) + "."
    if not args.quick and memory_repeats < cfg["repeats"]:
        caveat = ((caveat + " ") if caveat else "") + (
            f"The memory scenarios (idle streams, slow reader) ran {memory_repeats} of {cfg['repeats']} "
            "times: a full repeat would have passed the time budget."
        )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.monotonic() - started),
        "measuring_seconds": round(time.monotonic() - began),
        "make_seconds": round(time.time() - int(make_started)) if make_started else None,
        "others_cores": round(others, 2),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "loadavg_start": " ".join(f"{x:.2f}" for x in loadavg_start),
        "loadavg_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "versions": versions,
        "repeats": cfg["repeats"],
        "memory_repeats": memory_repeats,
        "config": cfg,
        "caveat": caveat,
        "fast_path": fast_path_available(),
        "skipped": skipped,
        "command": " ".join(["python benchmarks/run.py", *sys.argv[1:]]),
        "pinning": (
            f"servers pinned to CPU {SERVER_CPUS}, load to CPU {LOAD_CPUS} (taskset)"
            if SERVER_CPUS
            else "no CPU pinning (one core)"
        ),
        "database": (
            "SQLite (a fresh file per run), in-memory event log, API-only middleware (benchmarks/settings.py)"
        ),
        "servers": {s.name: s.command() for s in servers},
        "load_command": f"python benchmarks/load.py exec --concurrency 20 --duration {cfg['duration']} ...",
    }
    text = report.write(
        args.output or ("quick" if args.quick else "latest"),
        samples,
        [s.name for s in servers],
        meta,
        args.quick,
    )
    print(text)


if __name__ == "__main__":
    main()
