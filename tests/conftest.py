"""Shared fixtures: synced demo workflows, real ASGI servers, SSE helpers; the ``live`` marker."""

from __future__ import annotations

import contextlib
import inspect
import os
import types
import weakref
from collections.abc import Iterator

import pytest

from tests.browser import page  # noqa: F401  (the Playwright fixture, for the browser tests)
from tests.live import ServerProcess

CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session", autouse=True)
def _close_db_connections(django_db_setup, django_db_blocker):
    """Close every database connection the tests opened before the test database is destroyed.

    Django keeps a connection per thread and per context (asgiref's Local): async tests and
    sync_to_async open theirs in contexts the main thread's ``close_all`` does not see, and
    nexus_sse's DB threads keep theirs open. An SQLite database whose last connection is not
    closed keeps its -wal and -shm files after pytest-django removes the database file.
    """
    from django.db.backends.signals import connection_created

    opened: weakref.WeakSet = weakref.WeakSet()

    def record(sender, connection, **kwargs):
        opened.add(connection)

    connection_created.connect(record, weak=False)
    yield
    connection_created.disconnect(record)
    from nexus_sse import db

    with django_db_blocker.unblock():
        db.close_connections()  # on their threads, and the threads stop
        for wrapper in list(opened):
            wrapper.inc_thread_sharing()  # (closed from this thread: nothing uses it any more)
            try:
                wrapper.close()
            finally:
                wrapper.dec_thread_sharing()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remove the -wal/-shm files of a destroyed SQLite test database (say, after a killed server
    process held it last); with --reuse-db the database and its files stay."""
    from django.conf import settings

    if not settings.configured:
        return
    test_db = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if "sqlite3" not in settings.DATABASES["default"]["ENGINE"] or not test_db or os.path.exists(test_db):
        return
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(test_db + suffix)


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


# --- the ``live`` marker: tests that need more than this process -----------------------------------

#: names that mean a process of its own: a server (tests/live.py) or a command
OUT_OF_PROCESS = frozenset(("ServerProcess", "subprocess"))


def _names(code: types.CodeType) -> Iterator[str]:
    """The global names ``code`` and the functions nested in it refer to."""
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def _starts_a_process(func: object, seen: set) -> bool:
    """Whether ``func``, or a function or class of its own module that it uses, starts a process
    (names ServerProcess or subprocess)."""
    func = inspect.unwrap(getattr(func, "__func__", func))
    code = getattr(func, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    module = getattr(func, "__module__", None)
    found = getattr(func, "__globals__", {})
    for name in _names(code):
        if name in OUT_OF_PROCESS:
            return True
        target = found.get(name)
        if getattr(target, "__module__", None) != module:
            continue
        if isinstance(target, types.FunctionType) and _starts_a_process(target, seen):
            return True
        if isinstance(target, type) and any(_starts_a_process(f, seen) for f in vars(target).values()):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``live`` every test that starts a process, in its body or through a fixture (``server``,
    ``live`` and the modules' own), and every test that needs Redis: ``pytest -m "not live"`` runs
    the rest, in process and with nothing else installed or running."""
    verdicts: dict = {}
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        funcs = [item.function]
        for name in item.fixturenames:
            funcs += [fixture.func for fixture in item._fixtureinfo.name2fixturedefs.get(name, ())]
        for func in funcs:
            if func not in verdicts:
                verdicts[func] = _starts_a_process(func, set())
        if item.get_closest_marker("redis") or any(verdicts[func] for func in funcs):
            item.add_marker(pytest.mark.live)
