"""Prometheus metrics of this process (a registry of our own, so a site's metrics are not mixed in)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

open_streams = Gauge("nexus_sse_open_streams", "SSE streams open now.", registry=REGISTRY)
runs_started = Counter("nexus_sse_runs_started_total", "Runs started.", ["workflow"], registry=REGISTRY)
runs_finished = Counter("nexus_sse_runs_total", "Runs that ended, by status.", ["status"], registry=REGISTRY)
events_appended = Counter(
    "nexus_sse_events_appended_total", "Events appended to run logs.", registry=REGISTRY
)
events_delivered = Counter(
    "nexus_sse_events_delivered_total", "Events written to clients.", registry=REGISTRY
)
resumes = Counter(
    "nexus_sse_resumes_total", "Requests that resumed a run with Last-Event-ID.", registry=REGISTRY
)
disconnects = Counter(
    "nexus_sse_disconnects_total", "Streams that the client left before the end.", registry=REGISTRY
)
slow_readers = Counter(
    "nexus_sse_slow_readers_total",
    "Streams ended because the reader fell too far behind "
    "(SLOW_READER_MAX_LAG); they resume with Last-Event-ID.",
    registry=REGISTRY,
)
events_from_archive = Counter(
    "nexus_sse_events_from_archive_total",
    "Events a stream read from the database archive because the event log no longer held them.",
    registry=REGISTRY,
)
run_duration = Histogram(
    "nexus_sse_run_duration_seconds",
    "Run duration.",
    registry=REGISTRY,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
)
time_to_first_event = Histogram(
    "nexus_sse_time_to_first_event_seconds",
    "From an execute request to its first event handed to the server.",
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1),
)


def render() -> bytes:
    return generate_latest(REGISTRY)
