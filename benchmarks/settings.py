"""Benchmark settings: the demo site, a database file from the environment, no token delay."""

import os

from project.settings import *  # noqa: F403

DEBUG = False
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NEXUS_BENCH_DB", "/tmp/nexus-bench.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }
}
NEXUS_SSE = {"LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.0}}}
LOGGING = {"version": 1, "disable_existing_loggers": False}
