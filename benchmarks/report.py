"""Medians, ratios and targets of a benchmark run, written as Markdown and JSON (and into the README)."""

from __future__ import annotations

import json
import re
import statistics

from benchmarks.contenders import ROOT, repo_relative

RESULTS = ROOT / "benchmarks" / "results"
A, NEXUS, KAILASH = "A: bare Django view (uvicorn)", "nexus_sse (uvicorn)", "Kailash Nexus"
B, DJANGO_PATH = "B: sse-starlette (uvicorn)", "nexus_sse (uvicorn, Django path)"
#: the stated bound for the slow reader: what the server may hold for one reader beyond the run's own log
#: (socket buffers, the server's write buffer up to its high-water mark, one batch of events): 4 MB
SLOW_READER_BOUND_MB = 4.0
LOG_COLUMN = "of which the run's log MB"

# (column, scenario, key in the load result) — scenario None: computed in ``medians``
THROUGHPUT = [
    ("exec/s c=1", "exec one c=1", "executions_per_s"),
    ("exec/s c=20", "exec one c=20", "executions_per_s"),
    ("exec/s c=20 (wrk)", "wrk one c=20", "executions_per_s"),
    ("exec per server CPU-s c=20", "exec one c=20", "executions_per_cpu_s"),
    ("first event p50 ms", "exec one c=1", "ttfe_p50_ms"),
    ("first event p99 ms", "exec one c=1", "ttfe_p99_ms"),
    ("first event p50 ms c=20", "exec one c=20", "ttfe_p50_ms"),
    ("bytes/exec", "exec one c=1", "bytes_per_exec"),
    ("token events/s", "tokens", "events_per_s"),
    ("token events/s (curl)", "curl tokens", "events_per_s"),
    ("client CPU % tokens", "tokens", "client_cpu_pct"),
    ("client CPU % c=20", "exec one c=20", "client_cpu_pct"),
    ("server CPU % c=20", "exec one c=20", "server_cpu_pct"),
    ("errors", None, None),
]
STREAMS = [
    ("KB/stream @1000", "idle 1000", "kb_per_stream"),
    ("threads @1000", "idle 1000", "threads_open"),
    ("KB/stream @5000", "idle 5000", "kb_per_stream"),
    ("threads @5000", "idle 5000", "threads_open"),
    ("fan-out events/s", "fanout", "events_per_s"),
    ("fan-out lag s", "fanout", "lag_s"),
    ("slow reader RSS +MB", "slow", "rss_peak_growth_mb"),
    (LOG_COLUMN, "slow", "log_only_growth_mb"),
    ("slow reader buffered MB", "slow", "reader_growth_mb"),
    ("slow reader KB read", "slow", "kb_read"),
    ("server ended it at s", "slow", "server_closed_s"),
    ("slow reader hung up", "slow", "disconnected"),
    ("stream ended with", "slow", "ending"),
]
QUICK = [
    ("exec/s c=1", 1, "executions_per_s"),
    ("exec/s c=20", 20, "executions_per_s"),
    ("first event p50 ms", 1, "ttfe_p50_ms"),
    ("first event p99 ms", 1, "ttfe_p99_ms"),
    ("first event p50 ms c=20", 20, "ttfe_p50_ms"),
    ("bytes/exec", 1, "bytes_per_exec"),
]
WORKFLOWS = {
    "one": "bench_one (one node)",
    "greet": "greet (demo, one node)",
    "chat": "chat (demo, LLM agent)",
}


LEGEND_THROUGHPUT = [
    (
        "- exec/s: SSE executions per second (POST, read the stream to its `complete`, a new run each time) "
        "with c clients on keep-alive connections; first event: request sent → `start` event read."
    ),
    (
        "- (wrk), (curl): the same load from wrk or curl, compiled clients, in the first repeat: close to "
        "the Python client's figure means the Python client is not what limits it."
    ),
    (
        "- exec per server CPU-s: executions per second of CPU the server used in the window: on a busy "
        "machine steadier than exec/s (a server that waits for its core does fewer per wall second, not per "
        "CPU second)."
    ),
    (
        "- CPU %: CPU used in the measured window, 100 = one core. A client near 100% is the bottleneck "
        "(then trust the compiled client's figure); a server below ~95% at c=20 was waiting — for its core, "
        "taken by other processes (see the load average), or for I/O."
    ),
]


def legend_streams(cfg: dict) -> list[str]:
    return [
        (
            "- KB/stream: server RSS growth ÷ idle open streams, in a fresh server process; threads: the "
            "server's OS threads with them open."
        ),
        (
            f"- fan-out: one run, {cfg['subscribers']} subscribers attached before it streams its "
            f"{cfg['fanout_tokens']:,} tokens; events/s delivered in all; lag: the last subscriber's end − "
            "the first's; every subscriber must get every token (else it counts as an error)."
        ),
        (
            f"- slow reader: one client reads a {cfg['slow_length']:,}-event stream at 1 KB/s through a 4 KB "
            f"receive buffer for {cfg['slow_seconds']:g} s, then drains the rest fast to see how it ends. "
            "RSS +MB: the server's peak growth meanwhile; the run's log: growth for the same run with "
            "nobody reading (nexus_sse); buffered: the difference, what the server holds for the slow "
            "reader; KB read: what the slow reader got; server ended it at: when the server's end of the "
            "connection left ESTABLISHED (/proc/net/tcp), seconds after the request; hung up: it did so "
            "before the slow read was over and before the terminal event; ended with: how the stream ended "
            "once drained (`:slow reader` comment = nexus_sse's slow-reader cut-off; then a Last-Event-ID "
            "resume is checked)."
        ),
        (
            "- daphne applies no backpressure: whatever the application writes is buffered in the server "
            "(Twisted's transport) however slowly the client reads, so a slow reader costs daphne memory in "
            "proportion to the stream, and an application cannot tell that its reader lags. uvicorn pauses "
            "the application's `send` above its write high-water mark."
        ),
    ]


def median(runs: list[dict], key: str):
    if key == "kb_read":
        runs = [{key: r["bytes_read"] / 1024} for r in runs if r.get("bytes_read") is not None]
    values = [r[key] for r in runs if r.get(key) is not None]
    if values and all(isinstance(v, bool) for v in values):
        return sum(values) > len(values) / 2  # the majority
    if values and all(isinstance(v, str) for v in values):
        return max(set(values), key=values.count)  # the most frequent
    return statistics.median(values) if values else None


def medians(samples: dict[tuple[str, str], list[dict]], names: list[str]) -> dict[str, dict]:
    table: dict[str, dict] = {name: {} for name in names}
    for name in names:
        row = table[name]
        for column, scenario, key in THROUGHPUT + STREAMS:
            if scenario and (name, scenario) in samples:
                value = median(samples[(name, scenario)], key)
                if value is not None:
                    row[column] = value
        row["errors"] = sum(r.get("errors", 0) for (n, s), runs in samples.items() if n == name for r in runs)
    return table


def quick_table(samples: dict, names: list[str]) -> dict[str, dict]:
    """One row per contender and workflow: executions/s and time to first event."""
    table: dict[str, dict] = {}
    for name in names:
        for wf, label in WORKFLOWS.items():
            runs = {c: samples.get((name, f"exec {wf} c={c}")) for c in (1, 20)}
            if not any(runs.values()):
                continue
            row = table[f"{name} — {label}"] = {}
            for column, c, key in QUICK:
                value = median(runs[c] or [], key)
                if value is not None:
                    row[column] = value
            row["errors"] = sum(r.get("errors", 0) for c in (1, 20) for r in runs[c] or [])
    return table


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1):
        return f"{int(value):,}"  # counts (threads), also as the median of an even number of samples
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def markdown_table(table: dict, columns: list[str]) -> list[str]:
    columns = [c for c in columns if any(c in row for row in table.values())]
    lines = ["| contender | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [
        f"| {name} | " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for name, row in table.items()
    ]
    return lines


def ratios(table: dict) -> list[str]:
    """Each contender against baseline A (and Kailash Nexus for executions/s)."""
    base, peer = table.get(A, {}), table.get(KAILASH, {})
    metrics = [
        "exec/s c=20",
        "exec per server CPU-s c=20",
        "first event p50 ms",
        "token events/s",
        "KB/stream @5000",
    ]
    lines = [
        "| contender | " + " | ".join(f"{m} ÷ A" for m in metrics) + " | exec/s c=20 ÷ Kailash Nexus |",
        "|---" * (len(metrics) + 2) + "|",
    ]
    for name, row in table.items():
        cells = [fmt(row[m] / base[m]) if row.get(m) and base.get(m) else "—" for m in metrics]
        k = "exec/s c=20"
        cells.append(fmt(row[k] / peer[k]) if row.get(k) and peer.get(k) else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def noise(table: dict) -> str:
    """How far apart two contenders running the same code came out (before the fast path lands)."""
    a, b = table.get(NEXUS, {}), table.get(DJANGO_PATH, {})
    parts = [
        f"{c} {fmt(100 * abs(a[c] / b[c] - 1))}%"
        for c in ("exec/s c=20", "exec per server CPU-s c=20", "first event p50 ms")
        if a.get(c) and b.get(c)
    ]
    return f" (here: {', '.join(parts)} apart)" if parts else ""


def fast_path_gain(table: dict) -> list[str]:
    """nexus_sse (uvicorn) against the same server with the fast path off."""
    fast, slow = table.get(NEXUS, {}), table.get(DJANGO_PATH, {})
    if not fast or not slow:
        return []
    parts = []
    for column, unit in (
        ("exec/s c=1", "/s"),
        ("exec/s c=20", "/s"),
        ("exec per server CPU-s c=20", ""),
        ("first event p50 ms", " ms"),
        ("first event p99 ms", " ms"),
        ("token events/s", "/s"),
        ("KB/stream @5000", " KB"),
    ):
        if fast.get(column) and slow.get(column):
            parts.append(
                f"{column} {fmt(slow[column])}{unit} → {fmt(fast[column])}{unit} "
                f"(×{fast[column] / slow[column]:.2f})"
            )
    return ["Fast path (nexus_sse under uvicorn, Django path → fast path): " + "; ".join(parts) + "."]


def targets(table: dict, meta: dict | None = None) -> list[tuple[str, bool | None, str]]:
    """Each target of issue 7 for nexus_sse under uvicorn: met or not, the figures, and for a miss by how
    much and the reason, with the baselines' figures from the same run where they explain it."""
    nexus, base, peer = table.get(NEXUS, {}), table.get(A, {}), table.get(KAILASH, {})
    star = table.get(B, {})
    out: list[tuple[str, bool | None, str]] = []

    def ratio(a, b):
        return a / b if a and b else None

    def add(label: str, ok: bool | None, detail: str, why: str = "") -> None:
        out.append((label, ok, detail + (f". Why: {why}" if ok is False and why else "")))

    r = ratio(nexus.get("exec/s c=20"), peer.get("exec/s c=20"))
    ra = ratio(base.get("exec/s c=20"), peer.get("exec/s c=20"))
    add(
        "executions/s c=20 ≥ 5× Kailash Nexus",
        None if r is None else r >= 5,
        f"{fmt(r)}× ({fmt(nexus.get('exec/s c=20'))} vs {fmt(peer.get('exec/s c=20'))}; per server "
        "CPU-second "
        f"{fmt(ratio(nexus.get('exec per server CPU-s c=20'), peer.get('exec per server CPU-s c=20')))}×)"
        + (f"; short by {fmt(100 * (1 - r / 5))}%" if r is not None and r < 5 else ""),
        f"a bare Django view (baseline A, no workflow, no database) reaches {fmt(ra)}× Kailash Nexus in this "
        "run; nexus_sse skips Django's handler on the fast path but does a whole run per request: the run "
        "is written to the database (group-committed) before its `complete` goes out, and on the one core "
        "the server has, the database thread's work competes with the event loop's",
    )
    r = ratio(nexus.get("exec/s c=20"), base.get("exec/s c=20"))
    rc = ratio(nexus.get("exec per server CPU-s c=20"), base.get("exec per server CPU-s c=20"))
    add(
        "executions/s c=20 ≥ 50% of baseline A",
        None if r is None else r >= 0.5,
        f"{fmt(r and 100 * r)}% ({fmt(nexus.get('exec/s c=20'))} vs {fmt(base.get('exec/s c=20'))}; per "
        f"server CPU-second {fmt(rc and 100 * rc)}%)",
        "each execution is a run: a database row, a task, the event log and the archive, on top of the view",
    )
    t, k, ta = nexus.get("first event p50 ms"), peer.get("first event p50 ms"), base.get("first event p50 ms")
    add(
        "first event p50 ≤ 3 ms",
        None if t is None else t <= 3,
        f"{fmt(t)} ms" + (f", {fmt(t - 3)} ms over" if t and t > 3 else ""),
        f"baseline A took {fmt(ta)} ms in the same run; a busy machine stretches every figure (other "
        f"processes used {(meta or {}).get('others_cores', '?')} cores on average)",
    )
    add(
        "first event p50 ≤ Kailash Nexus'",
        None if t is None or k is None else t <= k,
        f"{fmt(t)} ms vs {fmt(k)} ms" + (f", {fmt(t - k)} ms over" if t and k and t > k else ""),
        "Nexus writes `start` before it validates or runs anything; nexus_sse first checks access, rate "
        "limit and inputs (so a bad request is a plain HTTP error, as the wire contract says) and creates "
        f"and logs the run; a bare Django view (baseline A) needed {fmt(ta)} ms",
    )
    r = ratio(nexus.get("token events/s"), base.get("token events/s"))
    rc = ratio(nexus.get("token events/s (curl)"), base.get("token events/s (curl)"))
    add(
        "token stream events/s ≥ 50% of baseline A",
        None if r is None else r >= 0.5,
        f"{fmt(r and 100 * r)}% (with curl as the client: {fmt(rc and 100 * rc)}%)",
        "nexus_sse also logs and archives every event (a batch of 500 at a time on the database thread, "
        "which shares the server's one core with the stream), and a run lets other work in every 64 events; "
        f"the Python load client ran at {fmt(base.get('client CPU % tokens'))}% of its core against baseline "
        "A, so baseline A's figure is what that client could take",
    )
    kb, kba, kbb = nexus.get("KB/stream @5000"), base.get("KB/stream @5000"), star.get("KB/stream @5000")
    add(
        "RSS per idle stream at 5,000 ≤ 25 KB",
        None if kb is None else kb <= 25,
        f"{fmt(kb)} KB" + (f", {fmt(kb - 25)} KB over" if kb and kb > 25 else ""),
        f"the server's own per-connection cost is most of it (baseline A {fmt(kba)} KB, sse-starlette "
        f"{fmt(kbb)} KB per idle stream in this run, holding no run at all); each nexus_sse stream also "
        "holds a live run (its row object, the executor task and its frames, the event log, the subscriber)",
    )
    th0, th = nexus.get("threads @1000"), nexus.get("threads @5000")
    add(
        "OS threads flat as idle streams grow",
        None if th is None or th0 is None else th - th0 <= 2,
        f"{fmt(th0)} threads at 1,000 streams, {fmt(th)} at 5,000 (baseline A: "
        f"{fmt(base.get('threads @5000'))})",
    )
    lag = nexus.get("fan-out lag s")
    add(
        "100-subscriber fan-out: no subscriber lags the fastest by > 1 s",
        None if lag is None else lag <= 1,
        f"{fmt(lag)} s; {fmt(nexus.get('fan-out events/s'))} events/s delivered",
    )
    buf = nexus.get("slow reader buffered MB")
    add(
        f"slow reader: server holds ≤ {SLOW_READER_BOUND_MB:g} MB for it beyond the run's own log",
        None if buf is None else buf <= SLOW_READER_BOUND_MB,
        (
            f"{fmt(buf)} MB (RSS +{fmt(nexus.get('slow reader RSS +MB'))} MB, of which the run's log "
            f"{fmt(nexus.get(LOG_COLUMN))} MB; baseline A under the same server: "
            f"{fmt(base.get('slow reader buffered MB'))} MB)"
        ),
        "beyond uvicorn's write buffer and one ≤ 64 KB chunk, what a reader behind the in-memory log's "
        "window costs is the batch of events read back from the archive for it",
    )
    hung, closed = nexus.get("slow reader hung up"), nexus.get("server ended it at s")
    add(
        "slow reader is disconnected with a resumable cursor",
        None if hung is None else bool(hung),
        (
            f"yes, after {fmt(closed)} s; stream ended with: {nexus.get('stream ended with')}"
            if hung
            else (
                "no: the stream stayed open for the whole slow read; it ended with: "
                f"{nexus.get('stream ended with')}"
            )
        ),
        "the cut-off ends a stream only when its reader is more than SLOW_READER_MAX_LAG events behind, "
        "further behind than at the last look, and holding up the server's sends",
    )
    return out


def run_root(commands: list[str]) -> str | None:
    """The checkout a run's commands name (the directory above .venv*/ or benchmarks/), if any."""
    found = re.search(r"(?<![^\s=:])(/\S*?)/(?:\.venv[^/\s]*|benchmarks)/", " ".join(commands))
    return found.group(1) if found else None


def portable(meta: dict) -> dict:
    """``meta`` with its commands and notes relative to the repository they ran in (results saved
    before the commands were recorded so hold the absolute paths of that machine)."""
    servers, skipped = meta.get("servers", {}), meta.get("skipped", [])
    ran_in = run_root([*servers.values(), *skipped]) or str(ROOT)
    roots = sorted({str(ROOT), ran_in}, key=len, reverse=True)  # (a checkout inside the other first)

    def rel(text: str) -> str:
        for root in roots:
            text = repo_relative(text, root)
        return text

    out = {**meta, "servers": {n: rel(c) for n, c in servers.items()}}
    if skipped:
        out["skipped"] = [rel(s) for s in skipped]
    return out


def write(name: str, samples: dict, names: list[str], meta: dict, quick: bool) -> str:
    meta = portable(meta)
    table = quick_table(samples, names) if quick else medians(samples, names)
    checks = [] if quick else targets(table, meta)
    lines = [f"# Benchmarks — {meta['date']}", "", *header(meta, table), ""]
    if quick:
        lines += [
            "## SSE executions/s and time to first event",
            "",
            (
                "The demo site's workflows `greet` and `chat` (offline provider, no token delay) and the "
                "benchmark's one-node workflow on nexus_sse; the same one-node events from the others."
            ),
            "",
            *markdown_table(table, [c for c, _, _ in QUICK] + ["errors"]),
        ]
    else:
        lines += [
            "## Throughput and latency",
            "",
            *markdown_table(table, [c for c, _, _ in THROUGHPUT]),
            "",
            *LEGEND_THROUGHPUT,
            "",
            "## Streams and memory",
            "",
            *markdown_table(table, [c for c, _, _ in STREAMS]),
            "",
            *legend_streams(meta["config"]),
            "",
            "## Ratios",
            "",
            *ratios(table),
            "",
            *(fast_path_gain(table) if meta.get("fast_path") else []),
            "",
            "## Targets (nexus_sse under uvicorn, one process)",
            "",
            *[
                f"- {t}: {'—' if ok is None else ('met' if ok else '**missed**')} — {d}"
                for t, ok, d in checks
            ],
        ]
    lines += [
        "",
        "## Commands",
        "",
        *[f"- {n}: `{c}`" for n, c in meta["servers"].items()],
        f"- load: `{meta['load_command']}`",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    raw = {f"{n} | {s}": runs for (n, s), runs in samples.items()}
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "medians": table,
                "targets": [{"target": t, "met": ok, "detail": d} for t, ok, d in checks],
                "samples": raw,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    (RESULTS / f"{name}.md").write_text(text)
    if not quick and name == "latest":
        update_readme(table, meta, checks)
    return text


def header(meta: dict, table: dict | None = None) -> list[str]:
    v = meta["versions"]
    peers = "; ".join(
        f"{k}: " + ", ".join(f"{p} {x}" for p, x in d.items()) for k, d in v.items() if k != "main"
    )
    lines = [
        (
            f"Machine: {meta['machine']}. Load average {meta['loadavg_start']} at the start, "
            f"{meta['loadavg_end']} at the end; other processes used {meta.get('others_cores', '?')} cores "
            f"on average meanwhile. Took {meta['seconds']} s"
            + (
                f" (`make bench`, with the environments: {meta['make_seconds']} s)"
                if meta.get("make_seconds")
                else ""
            )
            + f". Command: `{meta['command']}`."
        ),
        "",
        "Versions: "
        + ", ".join(f"{p} {x}" for p, x in v["main"].items())
        + (f"; {peers}" if peers else "")
        + ".",
        "",
        (
            f"Medians of {meta['repeats']} repeats, contenders interleaved (order rotated each repeat); "
            f"{meta['pinning']}; {meta['database']}. Same bytes on the wire: start, progress started, "
            "progress completed, complete (Kailash Nexus: start, complete); token streams: start, N "
            "tokens, complete."
        ),
    ]
    if meta.get("skipped"):
        lines += ["", "**Skipped:** " + "; ".join(meta["skipped"]) + "."]
    if meta.get("fast_path") is False:
        lines += [
            "",
            (
                '**No fast path in this checkout:** nexus_sse here has no `NEXUS_SSE["FAST_PATH"]` '
                "setting, so `nexus_sse (uvicorn)` and `nexus_sse (uvicorn, Django path)` ran the same code; "
                "the difference between those two rows is the run's noise" + noise(table or {}) + "."
            ),
        ]
    elif meta.get("fast_path"):
        lines += [
            "",
            (
                "`nexus_sse (uvicorn, Django path)` is the same server with `NEXUS_BENCH_FAST_PATH=0` "
                '(`NEXUS_SSE["FAST_PATH"] = False`): every request through Django\'s handler; its ratio '
                "to `nexus_sse (uvicorn)` is the fast path's gain."
            ),
        ]
    if "nexus_sse (uvicorn, Redis log)" in (table or {}):
        lines += [
            "",
            (
                "`nexus_sse (uvicorn, Redis log)` is the same server on the Redis event log "
                '(`EVENT_LOG = "redis"`, local Redis; what several processes share): its ratio to '
                "`nexus_sse (uvicorn)` is what Redis costs. On it a run's row is also written when the run "
                "starts (another process may be asked about the run at once), not only with its first "
                "events."
            ),
        ]
    if meta.get("caveat"):
        lines += ["", f"**Caveat:** {meta['caveat']}"]
    return lines


BLOCK = re.compile(r"(<!-- bench-table:start -->\n).*?(<!-- bench-table:end -->)", re.DOTALL)


def replace_block(path, lines: list[str]) -> None:
    """Rewrite what is between a file's bench-table markers.

    A file without the markers is left alone, with a message.
    """
    text = path.read_text()
    if not BLOCK.search(text):
        print(f"{path.name} has no bench-table markers: not updated", flush=True)
        return
    path.write_text(BLOCK.sub(lambda m: m.group(1) + "\n".join(lines) + "\n" + m.group(2), text))


def summary(meta: dict) -> list[str]:
    main = meta["versions"].get("main", {})
    lines = [
        (
            f"{meta['date']}, {meta['machine']}; Python {main.get('python', '?')}, Django "
            f"{main.get('django', '?')}; medians of {meta['repeats']} interleaved repeats; load average "
            f"{meta['loadavg_start']} at the start, {meta['loadavg_end']} at the end; took "
            f"{meta.get('make_seconds') or meta['seconds']} s."
        ),
        "",
    ]
    if meta.get("caveat"):
        lines += [f"**Caveat:** {meta['caveat']}", ""]
    return lines


def update_readme(table: dict, meta: dict, checks: list | None = None) -> None:
    """The README's table and docs/performance.md's figures, between their bench-table markers."""
    columns = [
        "exec/s c=1",
        "exec/s c=20",
        "exec per server CPU-s c=20",
        "first event p50 ms",
        "token events/s",
        "KB/stream @5000",
        "threads @5000",
        "slow reader buffered MB",
    ]
    body = [*summary(meta), *markdown_table(table, columns), ""]
    if checks:
        missed = [t for t, ok, _ in checks if ok is False]
        body += [
            f"Targets (nexus_sse, uvicorn, one process): {sum(ok is True for _, ok, _ in checks)} met, "
            f"{len(missed)} missed" + (f" ({'; '.join(missed)})" if missed else "") + ".",
            "",
        ]
    replace_block(ROOT / "README.md", body)
    docs = [
        *summary(meta),
        "Throughput and latency:",
        "",
        *markdown_table(
            table,
            [
                "exec/s c=1",
                "exec/s c=20",
                "exec/s c=20 (wrk)",
                "exec per server CPU-s c=20",
                "first event p50 ms",
                "first event p99 ms",
                "token events/s",
                "token events/s (curl)",
                "client CPU % c=20",
                "server CPU % c=20",
            ],
        ),
        "",
        *(fast_path_gain(table) if meta.get("fast_path") else []),
        "",
        "Streams and memory:",
        "",
        *markdown_table(
            table,
            [
                "KB/stream @1000",
                "KB/stream @5000",
                "threads @1000",
                "threads @5000",
                "fan-out events/s",
                "fan-out lag s",
            ],
        ),
        "",
        "Slow reader:",
        "",
        *markdown_table(
            {n: r for n, r in table.items() if "slow reader RSS +MB" in r},
            [
                "slow reader RSS +MB",
                LOG_COLUMN,
                "slow reader buffered MB",
                "slow reader KB read",
                "server ended it at s",
                "stream ended with",
            ],
        ),
        "",
    ]
    if checks:
        docs += [
            "Targets (nexus_sse under uvicorn, one process):",
            "",
            *[
                f"- {t}: {'—' if ok is None else ('met' if ok else '**missed**')} — {d}"
                for t, ok, d in checks
            ],
            "",
        ]
    replace_block(ROOT / "docs" / "performance.md", docs)


def rerender(name: str = "latest") -> str:
    """Write ``name``.md/.json, the README table and performance.md's figures again from ``name``.json's
    samples (after a change to this module; the figures are not touched)."""
    saved = json.loads((RESULTS / f"{name}.json").read_text())
    samples = {tuple(key.split(" | ", 1)): runs for key, runs in saved["samples"].items()}
    return write(name, samples, list(saved["medians"]), saved["meta"], quick=False)


if __name__ == "__main__":  # python -m benchmarks.report [NAME]: re-render a full run's results from its JSON
    import sys

    print(rerender(sys.argv[1] if len(sys.argv) > 1 else "latest"))
