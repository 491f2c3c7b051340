"""NEXUS_SSE is read at call time, and `manage.py check` catches bad configuration."""

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from nexus_sse import conf
from nexus_sse.checks import check_settings
from nexus_sse.eventlog import get_event_log
from nexus_sse.eventlog.memory import MemoryEventLog


def ids(**nexus):
    with override_settings(NEXUS_SSE=nexus):
        return sorted({e.id for e in check_settings()})


def test_settings_are_read_at_call_time_and_reset_on_change():
    assert conf.get("KEEPALIVE_SECONDS") == 15.0
    with override_settings(NEXUS_SSE={"KEEPALIVE_SECONDS": 2}):
        assert conf.get("KEEPALIVE_SECONDS") == 2
        assert conf.get("ORPHAN_SECONDS") == conf.DEFAULTS["ORPHAN_SECONDS"]  # merged over defaults
    assert conf.get("KEEPALIVE_SECONDS") == 15.0


def test_default_configuration_passes_the_checks():
    assert ids() == []


@pytest.mark.parametrize(
    ("nexus", "expected"),
    [
        ({"KEEPALIVE": 3}, "nexus_sse.E002"),
        ({"KEEPALIVE_SECONDS": -1}, "nexus_sse.E003"),
        ({"MAX_BODY_BYTES": "big"}, "nexus_sse.E003"),
        ({"RUN_TIMEOUT_SECONDS": 0}, "nexus_sse.E003"),
        ({"EVENT_LOG": "no.such.Backend"}, "nexus_sse.E004"),
        ({"EVENT_LOG": "nexus_sse.models.Run"}, "nexus_sse.E004"),
        ({"EVENT_LOG_OPTIONS": []}, "nexus_sse.E004"),
        (
            {"LLM_PROVIDERS": {"x": {"BACKEND": "no.such.Provider"}}, "DEFAULT_LLM_PROVIDER": "x"},
            "nexus_sse.E005",
        ),
        ({"DEFAULT_LLM_PROVIDER": "missing"}, "nexus_sse.E006"),
        ({"DEFAULT_ACCESS": "everyone"}, "nexus_sse.E007"),
        ({"DEFAULT_RATE_LIMIT": "fast"}, "nexus_sse.E007"),
        ({"MAX_STREAMS_PER_USER": 0}, "nexus_sse.E003"),
        ({"STREAM_TOKEN_SECONDS": 0}, "nexus_sse.E003"),
        ({"WORKFLOW_CACHE_SECONDS": -1}, "nexus_sse.E003"),
    ],
)
def test_bad_settings_are_reported(nexus, expected):
    assert expected in ids(**nexus)


def test_missing_asgi_application_is_a_warning():
    with override_settings(ASGI_APPLICATION=None):
        assert "nexus_sse.W001" in {e.id for e in check_settings()}


@pytest.mark.django_db
def test_manage_py_check_fails_on_an_unknown_key():
    with override_settings(NEXUS_SSE={"ORPHAN_SECONDZ": 1}):
        with pytest.raises(SystemCheckError, match="ORPHAN_SECONDZ"):
            call_command("check")


def test_the_event_log_follows_the_setting():
    assert isinstance(get_event_log(), MemoryEventLog)
    with override_settings(NEXUS_SSE={"EVENT_LOG": "nexus_sse.eventlog.memory.MemoryEventLog"}):
        assert isinstance(get_event_log(), MemoryEventLog)
