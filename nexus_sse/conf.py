"""The only reader of ``settings.NEXUS_SSE``.

Each setting is declared once, as a field of :class:`Settings`: its type, default, validator and
a one-line doc. :data:`DEFAULTS` and :data:`TABLE` (read by the system checks) derive from it.

Settings are merged over :data:`DEFAULTS` and read at call time, never at import, so
``override_settings`` works; the cache is cleared on ``setting_changed``. Two ways to read:
``conf.get("KEEPALIVE_SECONDS")``, or typed, ``conf.settings.KEEPALIVE_SECONDS``.

One exception: ``DB_THREADS`` is read once, when nexus_sse's database threads start (db.py);
a later change takes effect in a new process.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver

#: A validator: the value's fault (" must be ...") or None if it is fine.
Check = Callable[[Any], str | None]


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """One NEXUS_SSE key: its default, its validator, its system-check id and its doc."""

    name: str
    default: Any
    check: Check
    doc: str
    error_id: str = "nexus_sse.E003"
    hint: str | Callable[[], str] | None = None

    def error(self, value: Any) -> str | None:
        """The check message for a bad ``value``, or None."""
        fault = self.check(value)
        return None if fault is None else f"NEXUS_SSE[{self.name!r}] {fault}"


# -- validators ---------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    """A finite int or float, not a bool: inf would mean "never", nan compares false."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _rule(ok: Callable[[Any], bool], fault: str) -> Check:
    """A validator that says ``fault`` when ``ok(value)`` is false."""

    def check(value: Any) -> str | None:
        return None if ok(value) else fault

    return check


def _or_none(ok: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or ok(value)


def _is_rate(value: Any) -> bool:
    from nexus_sse.models import RATE_RE  # local: models need the app registry

    return isinstance(value, str) and RATE_RE.match(value) is not None


def _not_a_string(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, not {value!r}."


def _not_a_provider(value: Any) -> str | None:
    # the full check (is it in LLM_PROVIDERS?) needs both settings: checks.py
    return None if isinstance(value, str) else f"= {value!r} is not in LLM_PROVIDERS."


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


POSITIVE_NUMBER = _rule(lambda v: _is_number(v) and v > 0, "must be a positive number.")
POSITIVE_INT = _rule(_is_positive_int, "must be a positive integer.")
POSITIVE_INT_OR_NONE = _rule(_or_none(_is_positive_int), "must be a positive integer or None.")
FLAG = _rule(lambda v: isinstance(v, bool), "must be True or False.")  # "no" would be truthy
NAME = _rule(_is_name, "must be a non-empty string (a TASKS alias, a queue name).")


def _lag_hint() -> str:
    from nexus_sse.eventlog.base import READ_BATCH  # local: eventlog imports this module

    return (
        "Events a stream may fall behind its run before it is ended for a slow reader (default "
        f"{DEFAULTS['SLOW_READER_MAX_LAG']}; streams are looked at {READ_BATCH} events at a "
        "time). None never ends them."
    )


BACKEND_HINT = "Use 'memory', 'redis' or a dotted path to a BaseEventLog subclass."


def _setting(default: Any, check: Check, doc: str, **more: Any) -> Any:
    """Declare a field of :class:`Settings` (a dataclass field holding its Setting row)."""
    meta = {"check": check, "doc": doc, **more}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# -- the settings -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """NEXUS_SSE merged over the defaults, as typed attributes (read through ``conf.settings``)."""

    EVENT_LOG: str = _setting(
        "memory",
        _not_a_string,
        'Event log backend: "memory", "redis" or a dotted path to a BaseEventLog subclass.',
        error_id="nexus_sse.E004",
        hint=BACKEND_HINT,
    )
    EVENT_LOG_OPTIONS: Mapping[str, Any] = _setting(
        {},
        _rule(lambda v: isinstance(v, dict), "must be a dict."),
        'Backend options, e.g. {"URL": "redis://127.0.0.1:6379/0"} for Redis.',
        error_id="nexus_sse.E004",
    )
    EVENT_LOG_RETENTION_SECONDS: float = _setting(
        300, POSITIVE_NUMBER, "How long a finished run stays in the log; then replay reads the database."
    )
    KEEPALIVE_SECONDS: float = _setting(
        15.0, POSITIVE_NUMBER, 'Idle seconds before a ":keepalive" comment on an open stream.'
    )
    RETRY_MILLISECONDS: int = _setting(3000, POSITIVE_INT, 'The "retry:" hint sent first on every stream.')
    ORPHAN_SECONDS: float = _setting(
        60.0, POSITIVE_NUMBER, 'A run nobody streams for this long is cancelled ("async" runs are exempt).'
    )
    RUN_TIMEOUT_SECONDS: float | None = _setting(
        None,
        _rule(_or_none(lambda v: _is_number(v) and v > 0), "must be a positive number or None."),
        "A run still going after this long fails with TimeoutError (None: no limit).",
    )
    MAX_BODY_BYTES: int = _setting(1024 * 1024, POSITIVE_INT, "Largest accepted request body, in bytes.")
    MAX_JSON_DEPTH: int = _setting(32, POSITIVE_INT, "Deepest accepted JSON nesting in a request body.")
    # Only servers that apply backpressure (uvicorn) let us see a slow reader.
    SLOW_READER_MAX_LAG: int | None = _setting(
        10_000,
        POSITIVE_INT_OR_NONE,
        'Events a stream may fall behind its run before it ends with ":slow reader" (None: never).',
        hint=_lag_hint,
    )
    ARCHIVE_BATCH_SIZE: int = _setting(
        500, POSITIVE_INT, "Events are archived to RunEvent rows in batches of at most this many..."
    )
    ARCHIVE_INTERVAL_SECONDS: float = _setting(
        0.25, POSITIVE_NUMBER, "...or at least this often while a run emits."
    )
    DB_THREADS: int | None = _setting(
        None,
        POSITIVE_INT_OR_NONE,
        "Threads for nexus_sse's own queries (None: 1 for SQLite, 4 otherwise); read once.",
    )
    WORKFLOW_CACHE_SECONDS: float = _setting(
        2.0,
        _rule(lambda v: _is_number(v) and v >= 0, "must be a number >= 0."),
        "Seconds an active Workflow row is cached per process.",
    )
    SYNC_ON_MIGRATE: bool = _setting(True, FLAG, "Sync code workflows into Workflow rows after migrate.")
    EXPOSE_ERRORS: bool | None = _setting(
        None,
        _rule(_or_none(lambda v: isinstance(v, bool)), "must be True, False or None (follow DEBUG)."),
        "Show node exception text to clients (None: follow DEBUG).",
    )
    DEFAULT_ACCESS: str = _setting(
        "public",
        _rule(
            lambda v: v in ("public", "authenticated", "permission"),
            "must be 'public', 'authenticated' or 'permission'.",
        ),
        'Who may run a workflow whose access policy is "default".',
        error_id="nexus_sse.E007",
    )
    DEFAULT_RATE_LIMIT: str | None = _setting(
        None,
        _rule(_or_none(_is_rate), "must look like '10/min' (s, min, hour, day) or None."),
        'Runs a user (an IP when anonymous) may start, "N/sec|min|hour|day" (None: no limit).',
        error_id="nexus_sse.E007",
    )
    MAX_STREAMS_PER_USER: int | None = _setting(
        None, POSITIVE_INT_OR_NONE, "Open streams one user (or IP) may hold in one process (None: no cap)."
    )
    STREAM_TOKEN_SECONDS: float = _setting(300, POSITIVE_NUMBER, "Lifetime of signed stream tokens.")
    EXECUTOR: str = _setting(
        "inprocess",
        _rule(lambda v: v in ("inprocess", "tasks"), "must be 'inprocess' or 'tasks'."),
        'Where runs execute: "inprocess" or "tasks" (Django tasks workers; needs Redis).',
        error_id="nexus_sse.E009",
    )
    TASKS_BACKEND: str = _setting(
        "default", NAME, 'The TASKS alias runs go to with "tasks".', error_id="nexus_sse.E009"
    )
    TASKS_QUEUE: str = _setting(
        "nexus_sse", NAME, 'The queue runs go to with "tasks".', error_id="nexus_sse.E009"
    )
    SHUTDOWN_GRACE_SECONDS: float = _setting(
        30.0, POSITIVE_NUMBER, "On SIGTERM, how long running runs get to finish."
    )
    METRICS_ENABLED: bool = _setting(False, FLAG, "Serve Prometheus metrics at metrics/.")
    METRICS_TOKEN: str | None = _setting(
        None,
        _rule(_or_none(_is_name), "must be a non-empty string or None."),
        "Bearer token for metrics/ besides staff users (None: staff only).",
    )
    # With nexus_sse.asgi.FastPathApplication installed (see asgi.py).
    FAST_PATH: bool = _setting(
        True, FLAG, "Serve the stream endpoints' cookie-less requests without Django's handler."
    )
    LLM_PROVIDERS: Mapping[str, Mapping[str, Any]] = _setting(
        {"offline": {"BACKEND": "offline"}},
        _rule(lambda v: isinstance(v, dict), "must be a dict of alias -> options."),
        'LLM providers by alias, each {"BACKEND": alias-or-dotted-path, **options}.',
        error_id="nexus_sse.E005",
    )
    DEFAULT_LLM_PROVIDER: str = _setting(
        "offline",
        _not_a_provider,
        "The provider alias LLMAgentNode uses when its config names none.",
        error_id="nexus_sse.E006",
    )


def _row(field: dataclasses.Field[Any]) -> Setting:
    default = field.default_factory() if callable(field.default_factory) else field.default
    return Setting(field.name, default, **field.metadata)


#: every setting, in declaration order
TABLE: tuple[Setting, ...] = tuple(_row(f) for f in dataclasses.fields(Settings))

DEFAULTS: dict[str, Any] = {row.name: row.default for row in TABLE}


def user_settings() -> Any:
    """``settings.NEXUS_SSE`` as given (None if absent); the checks say if it is not a dict."""
    return getattr(django_settings, "NEXUS_SSE", None)


@functools.cache
def get_config() -> dict[str, Any]:
    """Return NEXUS_SSE merged over DEFAULTS (cached until the setting changes)."""
    return {**DEFAULTS, **(user_settings() or {})}


def get(key: str) -> Any:
    """Return one setting."""
    return get_config()[key]


@functools.cache
def current() -> Settings:
    """The typed view of :func:`get_config` (cached until the setting changes)."""
    config = get_config()
    return Settings(**{name: config[name] for name in DEFAULTS})


class _SettingsProxy:
    """Forward attribute reads to the current :class:`Settings`, so a module may keep a reference."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)

    def __repr__(self) -> str:
        return repr(current())


#: ``conf.settings.KEEPALIVE_SECONDS``: typed for mypy, current after ``override_settings``
settings = cast(Settings, _SettingsProxy())


def expose_errors() -> bool:
    """Whether error messages from inside nodes may reach clients."""
    value = get("EXPOSE_ERRORS")
    return bool(django_settings.DEBUG) if value is None else bool(value)


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in ("NEXUS_SSE", "DEBUG"):
        get_config.cache_clear()
        current.cache_clear()
        # (the event log's manager listens too: it closes the old backend)
