"""The only reader of ``settings.NEXUS_SSE``.

Settings are merged over :data:`DEFAULTS` and read at call time, never at import, so
``override_settings`` works; the cache is cleared on ``setting_changed``.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # Event log backend: an alias ("memory", "redis") or a dotted path to a BaseEventLog subclass.
    "EVENT_LOG": "memory",
    # Backend options, e.g. {"URL": "redis://127.0.0.1:6379/0"} for the Redis backend.
    "EVENT_LOG_OPTIONS": {},
    # Seconds a finished run's events stay in the log before replay comes from the database archive.
    "EVENT_LOG_RETENTION_SECONDS": 300,
    # A ":keepalive" comment is sent after this many idle seconds on an open stream.
    "KEEPALIVE_SECONDS": 15.0,
    # The "retry:" hint (milliseconds) sent first on every stream.
    "RETRY_MILLISECONDS": 3000,
    # A run nobody streams for this long is cancelled (runs started with mode "async" are exempt).
    "ORPHAN_SECONDS": 60.0,
    # A run still going after this many seconds fails with TimeoutError (None: no limit).
    "RUN_TIMEOUT_SECONDS": None,
    # Largest accepted request body, in bytes.
    "MAX_BODY_BYTES": 1024 * 1024,
    # Deepest accepted JSON nesting in a request body.
    "MAX_JSON_DEPTH": 32,
    # A stream more than this many events behind the head of its run's log, and falling further behind
    # while the reader holds up its sends, ends with "retry:" and ":slow reader" (the client resumes
    # with Last-Event-ID). None: never. Only servers that apply backpressure (uvicorn) let us see it.
    "SLOW_READER_MAX_LAG": 10_000,
    # Archive events to RunEvent rows in batches of at most this many rows...
    "ARCHIVE_BATCH_SIZE": 500,
    # ...or after this many seconds, whichever comes first.
    "ARCHIVE_INTERVAL_SECONDS": 0.25,
    # Threads for nexus_sse's own database calls (None: 1 for SQLite, 4 otherwise). See db.py.
    "DB_THREADS": None,
    # Seconds an active Workflow row is cached per process (saves are seen at once in the same process).
    "WORKFLOW_CACHE_SECONDS": 2.0,
    # Sync code-registered workflows into Workflow rows after ``migrate``.
    "SYNC_ON_MIGRATE": True,
    # Show exception messages of failing nodes to clients. None: follow settings.DEBUG.
    "EXPOSE_ERRORS": None,
    # Who may run a workflow whose access policy is "default": "public", "authenticated" or "permission".
    "DEFAULT_ACCESS": "public",
    # Runs a user (an IP when anonymous) may start: "N/sec|min|hour|day", or None for no limit.
    "DEFAULT_RATE_LIMIT": None,
    # Open streams one user (or IP) may hold at once in one process (None: no cap).
    "MAX_STREAMS_PER_USER": None,
    # Lifetime of signed stream tokens (for EventSource, which cannot send headers), seconds.
    "STREAM_TOKEN_SECONDS": 300,
    # Where runs execute: "inprocess" (the web process that received them) or "tasks" (Django tasks
    # workers; needs the Redis event log). See worker.py.
    "EXECUTOR": "inprocess",
    "TASKS_BACKEND": "default",
    "TASKS_QUEUE": "nexus_sse",
    # On SIGTERM, runs executing in the process get this long to finish before it stops.
    "SHUTDOWN_GRACE_SECONDS": 30.0,
    # Serve Prometheus metrics at metrics/ (to staff, or to "Authorization: Bearer <METRICS_TOKEN>").
    "METRICS_ENABLED": False,
    "METRICS_TOKEN": None,
    # With nexus_sse.asgi.FastPathApplication installed: serve the stream endpoints' cookie-less
    # requests without Django's handler and middleware (see asgi.py). False: everything goes to Django.
    "FAST_PATH": True,
    # LLM providers by alias. Each entry: {"BACKEND": alias-or-dotted-path, **options}.
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline"}},
    # The provider alias LLMAgentNode uses when its config names none.
    "DEFAULT_LLM_PROVIDER": "offline",
}


@functools.cache
def get_config() -> dict[str, Any]:
    """Return NEXUS_SSE merged over DEFAULTS (cached until the setting changes)."""
    user = getattr(settings, "NEXUS_SSE", None) or {}
    return {**DEFAULTS, **user}


def get(key: str) -> Any:
    """Return one setting."""
    return get_config()[key]


def expose_errors() -> bool:
    """Whether error messages from inside nodes may reach clients."""
    value = get("EXPOSE_ERRORS")
    return bool(settings.DEBUG) if value is None else bool(value)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("NEXUS_SSE", "DEBUG"):
        get_config.cache_clear()
        from nexus_sse import eventlog  # local: eventlog imports this module

        if setting == "NEXUS_SSE":
            eventlog.reset()
