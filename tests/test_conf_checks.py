"""Settings: one NEXUS_SSE dict merged over defaults and read at call time; system checks catch bad ones."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from nexus_sse import conf
from nexus_sse.checks import check_settings
from nexus_sse.eventlog import get_event_log
from nexus_sse.eventlog.memory import MemoryEventLog


def check_ids(nexus) -> set[str]:
    with override_settings(NEXUS_SSE=nexus):
        return {message.id for message in check_settings()}


def messages(nexus) -> list:
    with override_settings(NEXUS_SSE=nexus):
        return check_settings()


# --- conf --------------------------------------------------------------------------------------------


def test_override_settings_is_seen_at_call_time_and_undone_after():
    before = conf.get("KEEPALIVE_SECONDS")
    assert before == settings.NEXUS_SSE["KEEPALIVE_SECONDS"]
    with override_settings(NEXUS_SSE={"KEEPALIVE_SECONDS": 2.5}):
        assert conf.get("KEEPALIVE_SECONDS") == 2.5
        # keys not given keep their defaults, including ones the outer settings had changed
        assert conf.get("ORPHAN_SECONDS") == conf.DEFAULTS["ORPHAN_SECONDS"]
        assert conf.get("LLM_PROVIDERS") == conf.DEFAULTS["LLM_PROVIDERS"]
    assert conf.get("KEEPALIVE_SECONDS") == before


def test_the_merged_config_is_cached_until_the_setting_changes():
    first = conf.get_config()
    assert conf.get_config() is first  # cached: no merge per call
    with override_settings(NEXUS_SSE={"RETRY_MILLISECONDS": 10}):
        inside = conf.get_config()
        assert inside is not first and inside["RETRY_MILLISECONDS"] == 10
    after = conf.get_config()
    assert after is not inside and after == first


def test_changing_other_settings_keeps_the_cache():
    first = conf.get_config()
    with override_settings(USE_TZ=not settings.USE_TZ):
        assert conf.get_config() is first


def test_an_absent_or_none_setting_means_all_defaults():
    with override_settings(NEXUS_SSE=None):
        assert conf.get_config() == conf.DEFAULTS
    with override_settings():
        del settings.NEXUS_SSE
        assert conf.get_config() == conf.DEFAULTS


def test_the_event_log_instance_is_rebuilt_when_the_setting_changes():
    before = get_event_log()
    assert isinstance(before, MemoryEventLog)  # the default
    assert get_event_log() is before
    with override_settings(NEXUS_SSE={"EVENT_LOG": "nexus_sse.eventlog.memory.MemoryEventLog"}):
        inside = get_event_log()
        assert inside is not before and isinstance(inside, MemoryEventLog)
    assert get_event_log() is not inside


@pytest.mark.parametrize(
    ("debug", "expose", "expected"),
    [(False, None, False), (True, None, True), (True, False, False), (False, True, True)],
)
def test_expose_errors_follows_debug_unless_set(debug, expose, expected):
    with override_settings(DEBUG=debug, NEXUS_SSE={"EXPOSE_ERRORS": expose}):
        assert conf.expose_errors() is expected


# --- checks ------------------------------------------------------------------------------------------


def test_the_test_settings_and_the_defaults_pass_the_checks():
    assert check_settings() == []
    assert messages({}) == []
    assert messages(None) == []


def test_an_unknown_key_is_e002_and_the_hint_lists_valid_keys():
    (error,) = messages({"KEEPALIVE": 3})
    assert error.id == "nexus_sse.E002"
    assert "'KEEPALIVE'" in error.msg
    assert "KEEPALIVE_SECONDS" in error.hint


def test_a_setting_that_is_not_a_dict_is_e001():
    assert check_ids(["KEEPALIVE_SECONDS"]) == {"nexus_sse.E001"}


@pytest.mark.parametrize(
    "nexus",
    [
        {"KEEPALIVE_SECONDS": -1},
        {"KEEPALIVE_SECONDS": 0},
        {"KEEPALIVE_SECONDS": "15"},
        {"KEEPALIVE_SECONDS": True},
        {"ORPHAN_SECONDS": float("nan")},
        {"KEEPALIVE_SECONDS": float("inf")},  # a stream that never sends a keepalive
        {"SHUTDOWN_GRACE_SECONDS": float("inf")},
        {"RUN_TIMEOUT_SECONDS": float("inf")},  # "no limit" is None
        {"WORKFLOW_CACHE_SECONDS": float("nan")},
        {"SYNC_ON_MIGRATE": "no"},  # a non-empty string is truthy: it would sync anyway
        {"SYNC_ON_MIGRATE": None},
        {"EXPOSE_ERRORS": "False"},  # would expose errors
        {"EXPOSE_ERRORS": 0},
        {"RETRY_MILLISECONDS": 2.5},
        {"MAX_BODY_BYTES": "big"},
        {"MAX_JSON_DEPTH": 0},
        {"RUN_TIMEOUT_SECONDS": 0},
        {"MAX_STREAMS_PER_USER": 0},
        {"STREAM_TOKEN_SECONDS": 0},
        {"DB_THREADS": True},
        {"WORKFLOW_CACHE_SECONDS": -1},
        {"METRICS_ENABLED": "yes"},
        {"FAST_PATH": 1},
        {"METRICS_TOKEN": ""},
    ],
)
def test_bad_numbers_and_flags_are_e003(nexus):
    (error,) = messages(nexus)
    assert error.id == "nexus_sse.E003"
    assert repr(next(iter(nexus))) in error.msg  # names the key


@pytest.mark.parametrize("nexus", [{"TASKS_QUEUE": ""}, {"TASKS_QUEUE": 3}, {"TASKS_BACKEND": None}])
def test_a_tasks_queue_or_backend_that_is_not_a_name_is_e009(nexus):
    (error,) = messages(nexus)
    assert error.id == "nexus_sse.E009"
    assert repr(next(iter(nexus))) in error.msg


@pytest.mark.parametrize(
    "backend",
    [
        "no.such.Backend",
        "nexus_sse.eventlog.memory.NoSuchLog",
        "nexus_sse.models.Run",
        "nodots",
        3,
        None,
        ["memory"],
    ],
)
def test_an_event_log_backend_that_is_not_one_is_e004(backend):
    (error,) = messages({"EVENT_LOG": backend})
    assert error.id == "nexus_sse.E004"
    assert "EVENT_LOG" in error.msg and "BaseEventLog" in error.hint


@pytest.mark.parametrize("options", [["redis://"], []])
def test_event_log_options_that_are_not_a_dict_are_e004(options):
    assert check_ids({"EVENT_LOG_OPTIONS": options}) == {"nexus_sse.E004"}


def test_valid_backends_by_alias_and_by_dotted_path_pass():
    assert check_ids({"EVENT_LOG": "memory"}) == set()
    assert check_ids({"EVENT_LOG": "nexus_sse.eventlog.memory.MemoryEventLog"}) == set()


@pytest.mark.parametrize(
    ("nexus", "expected"),
    [
        (
            {"LLM_PROVIDERS": {"x": {"BACKEND": "no.such.Provider"}}, "DEFAULT_LLM_PROVIDER": "x"},
            {"nexus_sse.E005"},
        ),
        ({"LLM_PROVIDERS": {"x": {"BACKEND": 3}}, "DEFAULT_LLM_PROVIDER": "x"}, {"nexus_sse.E005"}),
        ({"LLM_PROVIDERS": ["offline"]}, {"nexus_sse.E005"}),
        ({"DEFAULT_LLM_PROVIDER": "missing"}, {"nexus_sse.E006"}),
        ({"DEFAULT_LLM_PROVIDER": ["offline"]}, {"nexus_sse.E006"}),
        ({"DEFAULT_LLM_PROVIDER": None}, {"nexus_sse.E006"}),
        ({"LLM_PROVIDERS": {"main": {"BACKEND": "openai"}}, "DEFAULT_LLM_PROVIDER": "main"}, set()),
    ],
)
def test_llm_providers_are_checked(nexus, expected):
    assert check_ids(nexus) == expected


def test_an_unknown_default_provider_names_itself():
    (error,) = messages({"DEFAULT_LLM_PROVIDER": "gpt"})
    assert "'gpt'" in error.msg and "LLM_PROVIDERS" in error.msg


@pytest.mark.parametrize(
    ("nexus", "expected"),
    [
        ({"DEFAULT_ACCESS": "everyone"}, "nexus_sse.E007"),
        ({"DEFAULT_RATE_LIMIT": "fast"}, "nexus_sse.E007"),
        ({"EXECUTOR": "celery"}, "nexus_sse.E009"),
        ({"EXECUTOR": "tasks"}, "nexus_sse.E009"),  # with the in-memory log, workers could not share runs
    ],
)
def test_policy_and_executor_values_are_checked(nexus, expected):
    assert check_ids(nexus) == {expected}


def test_a_missing_asgi_application_is_warning_w001():
    assert "nexus_sse.W001" not in {m.id for m in check_settings()}
    for missing in (None, ""):
        with override_settings(ASGI_APPLICATION=missing):
            (warning,) = check_settings()
        assert warning.id == "nexus_sse.W001" and not warning.is_serious()
        assert "ASGI" in warning.hint


@pytest.mark.django_db  # some of Django's own checks open a connection
def test_manage_py_check_fails_on_an_unknown_key():
    with (
        override_settings(NEXUS_SSE={"ORPHAN_SECONDZ": 1}),
        pytest.raises(SystemCheckError, match=r"nexus_sse\.E002.*ORPHAN_SECONDZ"),
    ):
        call_command("check")
