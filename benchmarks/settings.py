"""Benchmark settings: the demo site, a database file from the environment, no token delay.

Environment: ``NEXUS_BENCH_DB`` (the SQLite file), ``NEXUS_BENCH_MIDDLEWARE=demo`` (the demo site's
middleware instead of the API-only stack), ``NEXUS_BENCH_FAST_PATH=0|1`` (sets ``NEXUS_SSE["FAST_PATH"]``,
the ASGI fast path; unset: the app's default), ``NEXUS_BENCH_REDIS_URL`` (the Redis event log at that
URL, under a key prefix of the server's own; unset: the in-memory log).
"""

import os

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.urls"
# An API-only middleware stack, the same for nexus_sse and baseline A. Each MiddlewareMixin middleware
# costs two thread hops per request; the demo site's nine are measured separately (see performance.md).
SILENCED_SYSTEM_CHECKS = []
if os.environ.get("NEXUS_BENCH_MIDDLEWARE") != "demo":
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
    ]
    SILENCED_SYSTEM_CHECKS += ["admin.E408", "admin.E409", "admin.E410"]  # the admin is not benchmarked
INSTALLED_APPS = [*INSTALLED_APPS, "benchmarks"]  # benchmarks/workflows.py
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NEXUS_BENCH_DB", "/tmp/nexus-bench.sqlite3"),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}
NEXUS_SSE = {
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.0}},
    "ORPHAN_SECONDS": 3600.0,
    "SHUTDOWN_GRACE_SECONDS": 1.0,  # the harness stops servers with thousands of idle runs in them
}
if os.environ.get("NEXUS_BENCH_FAST_PATH") is not None:
    NEXUS_SSE["FAST_PATH"] = os.environ["NEXUS_BENCH_FAST_PATH"].strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
        "",
    )
if os.environ.get("NEXUS_BENCH_REDIS_URL"):  # the Redis event log (a prefix of this server's own)
    NEXUS_SSE["EVENT_LOG"] = "redis"
    NEXUS_SSE["EVENT_LOG_OPTIONS"] = {
        "URL": os.environ["NEXUS_BENCH_REDIS_URL"],
        "MAX_AGE_SECONDS": 600,
        "PREFIX": f"nexus_bench_{os.getpid()}:",
    }
LOGGING = {"version": 1, "disable_existing_loggers": False}
