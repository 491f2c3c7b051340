"""Shared fixtures: synced demo workflows, real ASGI servers, SSE helpers."""

from __future__ import annotations

import os

import pytest

from tests.browser import page  # noqa: F401  (the Playwright fixture, for the browser tests)
from tests.live import ServerProcess

CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session", autouse=True)
def _close_nexus_db_threads(django_db_setup, django_db_blocker):
    """Close nexus_sse's long-lived DB-thread connections before the test database is destroyed."""
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from nexus_sse import db

    with django_db_blocker.unblock():
        db.close_connections()
        # async tests' ORM calls ran on asgiref's shared sync thread: close its connection too
        shared = getattr(SyncToAsync, "single_thread_executor", None)
        if shared is not None:
            shared.submit(connections.close_all).result(10)


@pytest.fixture
def workflows(transactional_db):
    """The demo workflows as Workflow rows (transactional tests flush the tables between tests)."""
    from nexus_sse.registry import sync_code_workflows

    sync_code_workflows()


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(request, django_db_setup, django_db_blocker):
    """A real ASGI server process (each module runs under uvicorn and under daphne)."""
    with ServerProcess(request.param) as proc:
        yield proc


@pytest.fixture(scope="module")
def uvicorn_server(django_db_setup, django_db_blocker):
    with ServerProcess("uvicorn") as proc:
        yield proc


@pytest.fixture
def live(server, workflows):
    """A running server with the demo workflows in its database: its base URL."""
    return server.url
