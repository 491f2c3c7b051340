"""Medians, ratios and targets of a benchmark run, written as Markdown and JSON (and into the README)."""

from __future__ import annotations

import json
import re
import statistics

from benchmarks.contenders import ROOT

RESULTS = ROOT / "benchmarks" / "results"
A, NEXUS, KAILASH = "A: bare Django view (uvicorn)", "nexus_sse (uvicorn)", "Kailash Nexus"
#: the stated bound for the slow reader: what the server may hold for one reader beyond the run's own log
SLOW_READER_BOUND_MB = 8.0
LOG_COLUMN = "of which the run's log MB"

# (column, scenario, key in the load result) — scenario None: computed in ``medians``
THROUGHPUT = [
    ("exec/s c=1", "exec one c=1", "executions_per_s"),
    ("exec/s c=20", "exec one c=20", "executions_per_s"),
    ("exec/s c=20 (wrk)", "wrk one c=20", "executions_per_s"),
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
    ("slow reader hung up", "slow", "disconnected"),
]
QUICK = [("exec/s c=1", 1, "executions_per_s"), ("exec/s c=20", 20, "executions_per_s"),
         ("first event p50 ms", 1, "ttfe_p50_ms"), ("first event p99 ms", 1, "ttfe_p99_ms"),
         ("first event p50 ms c=20", 20, "ttfe_p50_ms"), ("bytes/exec", 1, "bytes_per_exec")]
WORKFLOWS = {"one": "bench_one (one node)", "greet": "greet (demo, one node)", "chat": "chat (demo, LLM agent)"}


LEGEND_THROUGHPUT = [
    ("- exec/s: SSE executions per second (POST, read the stream to its `complete`, a new run each time) with "
    "c clients on keep-alive connections; first event: request sent → `start` event read."),
    ("- (wrk), (curl): the same load from wrk or curl, compiled clients, in the first repeat: close to the "
    "Python client's figure means the Python client is not what limits it."),
    ("- CPU %: CPU used in the measured window, 100 = one core. A client near 100% is the bottleneck (then "
    "trust the compiled client's figure); a server below ~95% at c=20 was waiting — for its core, taken by "
    "other processes (see the load average), or for I/O."),
]
LEGEND_STREAMS = [
    ("- KB/stream: server RSS growth ÷ idle open streams, in a fresh server process; threads: the server's OS "
    "threads with them open."),
    ("- fan-out: one run, 100 subscribers attached before it streams its tokens; events/s delivered in all; "
    "lag: the last subscriber's end − the first's."),
    ("- slow reader: one client reads a 100,000-event stream at 1 KB/s through a 4 KB receive buffer for 5 s. "
    "RSS +MB: the server's peak growth meanwhile; the run's log: growth for the same run with nobody reading "
    "(nexus_sse); buffered: the difference, what the server holds for the slow reader; hung up: the server "
    "ended the stream early (a resumable cursor is checked with Last-Event-ID)."),
]


def median(runs: list[dict], key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    if values and all(isinstance(v, bool) for v in values):
        return sum(values) > len(values) / 2  # the majority
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
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def markdown_table(table: dict, columns: list[str]) -> list[str]:
    columns = [c for c in columns if any(c in row for row in table.values())]
    lines = ["| contender | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for name, row in table.items()]
    return lines


def ratios(table: dict) -> list[str]:
    """Each contender against baseline A (and Kailash Nexus for executions/s)."""
    base, peer = table.get(A, {}), table.get(KAILASH, {})
    metrics = ["exec/s c=20", "first event p50 ms", "token events/s", "KB/stream @5000"]
    lines = ["| contender | " + " | ".join(f"{m} ÷ A" for m in metrics) + " | exec/s c=20 ÷ Kailash Nexus |",
             "|---" * (len(metrics) + 2) + "|"]
    for name, row in table.items():
        cells = [fmt(row[m] / base[m]) if row.get(m) and base.get(m) else "—" for m in metrics]
        k = "exec/s c=20"
        cells.append(fmt(row[k] / peer[k]) if row.get(k) and peer.get(k) else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def targets(table: dict) -> list[tuple[str, bool | None, str]]:
    nexus, base, peer = table.get(NEXUS, {}), table.get(A, {}), table.get(KAILASH, {})
    out: list[tuple[str, bool | None, str]] = []

    def ratio(a, b):
        return a / b if a and b else None

    r = ratio(nexus.get("exec/s c=20"), peer.get("exec/s c=20"))
    out.append(("executions/s c=20 ≥ 5× Kailash Nexus", None if r is None else r >= 5,
                f"{fmt(r)}× ({fmt(nexus.get('exec/s c=20'))} vs {fmt(peer.get('exec/s c=20'))})"))
    r = ratio(nexus.get("exec/s c=20"), base.get("exec/s c=20"))
    out.append(("executions/s c=20 ≥ 50% of baseline A", None if r is None else r >= 0.5,
                f"{fmt(r and 100 * r)}% ({fmt(nexus.get('exec/s c=20'))} vs {fmt(base.get('exec/s c=20'))})"))
    t, k = nexus.get("first event p50 ms"), peer.get("first event p50 ms")
    out.append(("first event p50 ≤ 3 ms", None if t is None else t <= 3, f"{fmt(t)} ms"))
    out.append(("first event p50 ≤ Kailash Nexus'", None if t is None or k is None else t <= k,
                f"{fmt(t)} ms vs {fmt(k)} ms"))
    r = ratio(nexus.get("token events/s"), base.get("token events/s"))
    out.append(("token stream events/s ≥ 50% of baseline A", None if r is None else r >= 0.5, f"{fmt(r and 100 * r)}%"))
    kb = nexus.get("KB/stream @5000")
    out.append(("RSS per idle stream at 5,000 ≤ 25 KB", None if kb is None else kb <= 25, f"{fmt(kb)} KB"))
    th0, th = nexus.get("threads @1000"), nexus.get("threads @5000")
    out.append(("OS threads flat as idle streams grow", None if th is None or th0 is None else th - th0 <= 2,
                f"{fmt(th0)} threads at 1,000 streams, {fmt(th)} at 5,000"))
    lag = nexus.get("fan-out lag s")
    out.append(("100-subscriber fan-out: no subscriber lags the fastest by > 1 s", None if lag is None else lag <= 1,
                f"{fmt(lag)} s; {fmt(nexus.get('fan-out events/s'))} events/s delivered"))
    buf = nexus.get("slow reader buffered MB")
    out.append((f"slow reader: server holds ≤ {SLOW_READER_BOUND_MB:g} MB for it beyond the run's log",
                None if buf is None else buf <= SLOW_READER_BOUND_MB,
                (f"{fmt(buf)} MB (RSS +{fmt(nexus.get('slow reader RSS +MB'))} MB, of which the run's log "
                 f"{fmt(nexus.get(LOG_COLUMN))} MB)")))
    hung = nexus.get("slow reader hung up")
    out.append(("slow reader is disconnected with a resumable cursor", hung, "yes" if hung else "no: kept open"))
    return out


def write(name: str, samples: dict, names: list[str], meta: dict, quick: bool) -> str:
    table = quick_table(samples, names) if quick else medians(samples, names)
    checks = [] if quick else targets(table)
    lines = [f"# Benchmarks — {meta['date']}", "", *header(meta), ""]
    if quick:
        lines += ["## SSE executions/s and time to first event", "",
                  ("The demo site's workflows `greet` and `chat` (offline provider, no token delay) and the "
                  "benchmark's one-node workflow on nexus_sse; the same one-node events from the others."), "",
                  *markdown_table(table, [c for c, _, _ in QUICK] + ["errors"])]
    else:
        lines += ["## Throughput and latency", "", *markdown_table(table, [c for c, _, _ in THROUGHPUT]), "",
                  *LEGEND_THROUGHPUT, "", "## Streams and memory", "",
                  *markdown_table(table, [c for c, _, _ in STREAMS]), "", *LEGEND_STREAMS, "",
                  "## Ratios", "", *ratios(table), "",
                  "## Targets (nexus_sse under uvicorn, one process)", "",
                  *[f"- {t}: {'—' if ok is None else ('met' if ok else '**missed**')} — {d}" for t, ok, d in checks]]
    lines += ["", "## Commands", "", *[f"- {n}: `{c}`" for n, c in meta["servers"].items()],
              f"- load: `{meta['load_command']}`"]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    raw = {f"{n} | {s}": runs for (n, s), runs in samples.items()}
    (RESULTS / f"{name}.json").write_text(json.dumps(
        {"meta": meta, "medians": table, "targets": [{"target": t, "met": ok, "detail": d} for t, ok, d in checks],
         "samples": raw}, indent=2, default=str) + "\n")
    (RESULTS / f"{name}.md").write_text(text)
    if not quick and name == "latest":
        update_readme(table, meta)
    return text


def header(meta: dict) -> list[str]:
    v = meta["versions"]
    peers = "; ".join(f"{k}: " + ", ".join(f"{p} {x}" for p, x in d.items()) for k, d in v.items() if k != "main")
    lines = [(f"Machine: {meta['machine']}. Load average {meta['loadavg_start']} at the start, "
              f"{meta['loadavg_end']} at the end. Took {meta['seconds']} s. Command: `{meta['command']}`."), "",
             "Versions: " + ", ".join(f"{p} {x}" for p, x in v["main"].items()) + (f"; {peers}" if peers else "") + ".",
             "", (f"Medians of {meta['repeats']} repeats, contenders interleaved (order rotated each repeat); "
                  f"{meta['pinning']}; {meta['database']}. Same bytes on the wire: start, progress started, "
                  "progress completed, complete (Kailash Nexus: start, complete); token streams: start, N "
                  "tokens, complete.")]
    if meta.get("caveat"):
        lines += ["", f"**Caveat:** {meta['caveat']}"]
    return lines


README_TABLE = re.compile(r"(<!-- bench-table:start -->\n).*?(<!-- bench-table:end -->)", re.DOTALL)


def update_readme(table: dict, meta: dict) -> None:
    """Rewrite the README's table between its bench-table markers (left alone if they are missing)."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    if not README_TABLE.search(text):
        print("README.md has no bench-table markers: not updated", flush=True)
        return
    columns = ["exec/s c=20", "first event p50 ms", "token events/s", "KB/stream @5000", "threads @5000"]
    body = [f"{meta['date']}, {meta['machine']}; medians of {meta['repeats']} interleaved repeats.", ""]
    if meta.get("caveat"):
        body += [f"**Caveat:** {meta['caveat']}", ""]
    body += [*markdown_table(table, columns), ""]
    readme.write_text(README_TABLE.sub(lambda m: m.group(1) + "\n".join(body) + "\n" + m.group(2), text))


if __name__ == "__main__":  # python -m benchmarks.report: the README table again, from latest.json
    saved = json.loads((RESULTS / "latest.json").read_text())
    update_readme(saved["medians"], saved["meta"])
