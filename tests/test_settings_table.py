"""Each NEXUS_SSE setting is declared once (conf.Settings) with a validator and a doc, and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import override_settings

from nexus_sse import conf
from nexus_sse.checks import check_settings
from nexus_sse.conf import settings as imported_settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"

#: one value each setting's validator must refuse (a new setting needs one here)
BAD = {
    "EVENT_LOG": 3,
    "EVENT_LOG_OPTIONS": "redis://",
    "EVENT_LOG_RETENTION_SECONDS": 0,
    "KEEPALIVE_SECONDS": float("inf"),
    "RETRY_MILLISECONDS": 1.5,
    "ORPHAN_SECONDS": -1,
    "RUN_TIMEOUT_SECONDS": "1",
    "MAX_BODY_BYTES": True,
    "MAX_JSON_DEPTH": -3,
    "SLOW_READER_MAX_LAG": 0,
    "ARCHIVE_BATCH_SIZE": None,
    "ARCHIVE_INTERVAL_SECONDS": float("nan"),
    "DB_THREADS": 2.0,
    "WORKFLOW_CACHE_SECONDS": -0.5,
    "SYNC_ON_MIGRATE": 1,
    "EXPOSE_ERRORS": "yes",
    "DEFAULT_ACCESS": "staff",
    "DEFAULT_RATE_LIMIT": "10 per minute",
    "MAX_STREAMS_PER_USER": -1,
    "STREAM_TOKEN_SECONDS": None,
    "EXECUTOR": "celery",
    "TASKS_BACKEND": "",
    "TASKS_QUEUE": ["q"],
    "SHUTDOWN_GRACE_SECONDS": "30",
    "METRICS_ENABLED": "False",
    "METRICS_TOKEN": 1234,
    "FAST_PATH": None,
    "LLM_PROVIDERS": ["offline"],
    "DEFAULT_LLM_PROVIDER": 0,
}

ROWS = {row.name: row for row in conf.TABLE}


def documented_keys() -> set[str]:
    """The keys named in the first column of the tables of docs/settings.md."""
    keys: set[str] = set()
    for line in DOCS.read_text().splitlines():
        if line.startswith("| `"):
            keys.update(re.findall(r"`([A-Z_]+)`", line.split("|")[1]))
    return keys


def test_the_defaults_come_from_the_table_and_every_row_has_a_doc():
    assert list(conf.DEFAULTS) == list(ROWS)
    assert all(row.doc.strip() and "\n" not in row.doc for row in conf.TABLE)
    assert all(re.fullmatch(r"nexus_sse\.E\d{3}", row.error_id) for row in conf.TABLE)


def test_every_setting_is_documented_in_settings_md_and_nothing_else_is():
    documented = documented_keys() - {"MAXLEN"}  # the in-memory log's option table
    assert documented == set(conf.DEFAULTS)


def test_every_default_passes_its_own_validator():
    assert {name: row.error(row.default) for name, row in ROWS.items()} == dict.fromkeys(ROWS)


def test_every_setting_has_a_bad_value_to_try():
    assert set(BAD) == set(ROWS)


@pytest.mark.parametrize(("name", "value"), BAD.items(), ids=list(BAD))
def test_each_validator_refuses_a_bad_value_and_the_check_names_the_key(name, value):
    row = ROWS[name]
    message = row.error(value)
    assert message is not None and message.startswith(f"NEXUS_SSE[{name!r}] ")
    with override_settings(NEXUS_SSE={name: value}):
        errors = check_settings()
    assert [(e.id, e.msg) for e in errors] == [(row.error_id, message)]


def test_the_typed_view_follows_override_settings_even_through_an_imported_name():
    assert conf.get("KEEPALIVE_SECONDS") == conf.settings.KEEPALIVE_SECONDS
    with override_settings(NEXUS_SSE={"KEEPALIVE_SECONDS": 2.5, "DB_THREADS": 3}):
        assert conf.settings.KEEPALIVE_SECONDS == 2.5
        assert imported_settings.DB_THREADS == 3
        assert conf.DEFAULTS["ORPHAN_SECONDS"] == conf.settings.ORPHAN_SECONDS
    assert conf.get("DB_THREADS") == imported_settings.DB_THREADS


def test_the_typed_view_is_cached_until_the_setting_changes_and_is_read_only():
    first = conf.current()
    assert conf.current() is first
    with override_settings(NEXUS_SSE={"RETRY_MILLISECONDS": 10}):
        assert conf.current() is not first
    with pytest.raises(AttributeError):
        conf.settings.KEEPALIVE_SECONDS = 1.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        conf.settings.NO_SUCH_SETTING  # noqa: B018


def test_unknown_keys_stay_out_of_the_typed_view():
    with override_settings(NEXUS_SSE={"KEEPALIVE": 3}):
        assert not hasattr(conf.current(), "KEEPALIVE")
        assert conf.DEFAULTS["KEEPALIVE_SECONDS"] == conf.settings.KEEPALIVE_SECONDS
