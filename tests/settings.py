"""Test settings: the demo site, a file SQLite database shared with server subprocesses.

Server subprocesses started by ``tests/live.py`` use these settings with NEXUS_TEST_SERVER=1 (so they
open the test database) and NEXUS_TEST_OVERRIDES, a JSON dict merged into NEXUS_SSE.
"""

import importlib.util
import json
import os

from project.settings import *  # noqa: F403
from project.settings import BASE_DIR, DATABASES, INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [*INSTALLED_APPS, "tests"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

_TEST_DB = os.environ.get("NEXUS_TEST_DB_FILE", str(BASE_DIR / ".test-db.sqlite3"))

if os.environ.get("NEXUS_DB") != "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _TEST_DB if os.environ.get("NEXUS_TEST_SERVER") else str(BASE_DIR / "db.sqlite3"),
            # IMMEDIATE + WAL + a long timeout: the test process and server processes write concurrently.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": _TEST_DB},
        }
    }
else:
    # NEXUS_TEST_PG_DB: a name of its own per checkout, so suites in two checkouts can run at once
    _PG_TEST_DB = os.environ.get("NEXUS_TEST_PG_DB", "test_nexus_sse")
    DATABASES["default"]["TEST"] = {"NAME": _PG_TEST_DB}
    if os.environ.get("NEXUS_TEST_SERVER"):
        DATABASES["default"]["NAME"] = _PG_TEST_DB

NEXUS_SSE = {
    "KEEPALIVE_SECONDS": 15.0,
    "SHUTDOWN_GRACE_SECONDS": 1.0,  # test servers stop quickly (test_shutdown.py sets its own)
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.0}},
    **json.loads(os.environ.get("NEXUS_TEST_OVERRIDES", "{}")),
}

CORS_ALLOWED_ORIGINS = ["https://allowed.example"]

# The worker tier (tests/test_worker.py): Django's tasks framework with django-tasks-db's database backend.
if importlib.util.find_spec("django.tasks") is None:
    INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks"]  # Django 5.2: the backport
INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "nexus_sse"]}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"nexus_sse": {"handlers": ["console"], "level": "WARNING"}},
}
