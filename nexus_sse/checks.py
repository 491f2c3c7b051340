"""System checks: bad backends, unknown NEXUS_SSE keys, bad values, no ASGI."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from nexus_sse import conf
from nexus_sse.eventlog.base import READ_BATCH

_POSITIVE_NUMBERS = (
    "KEEPALIVE_SECONDS",
    "ORPHAN_SECONDS",
    "ARCHIVE_INTERVAL_SECONDS",
    "EVENT_LOG_RETENTION_SECONDS",
    "STREAM_TOKEN_SECONDS",
    "SHUTDOWN_GRACE_SECONDS",
)
_POSITIVE_INTS = ("RETRY_MILLISECONDS", "MAX_BODY_BYTES", "MAX_JSON_DEPTH", "ARCHIVE_BATCH_SIZE")


def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool): inf would mean "never" (no keepalive, no timeout), nan compares false."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    errors: list = []
    user = getattr(settings, "NEXUS_SSE", None)
    if user is None:  # conf treats None like an absent setting
        user = {}
    if not isinstance(user, dict):
        return [Error("NEXUS_SSE must be a dict.", id="nexus_sse.E001")]
    for key in sorted(set(user) - set(conf.DEFAULTS)):
        errors.append(
            Error(
                f"Unknown NEXUS_SSE key {key!r}.",
                hint=f"Valid keys: {', '.join(sorted(conf.DEFAULTS))}.",
                id="nexus_sse.E002",
            )
        )
    config = conf.get_config()
    for key in _POSITIVE_NUMBERS:
        if not (_is_number(config[key]) and config[key] > 0):
            errors.append(Error(f"NEXUS_SSE[{key!r}] must be a positive number.", id="nexus_sse.E003"))
    for key in _POSITIVE_INTS:
        if not (isinstance(config[key], int) and not isinstance(config[key], bool) and config[key] > 0):
            errors.append(Error(f"NEXUS_SSE[{key!r}] must be a positive integer.", id="nexus_sse.E003"))
    timeout = config["RUN_TIMEOUT_SECONDS"]
    if timeout is not None and not (_is_number(timeout) and timeout > 0):
        errors.append(
            Error("NEXUS_SSE['RUN_TIMEOUT_SECONDS'] must be a positive number or None.", id="nexus_sse.E003")
        )
    for key in ("MAX_STREAMS_PER_USER", "DB_THREADS"):
        value = config[key]
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            errors.append(
                Error(f"NEXUS_SSE[{key!r}] must be a positive integer or None.", id="nexus_sse.E003")
            )
    lag = config["SLOW_READER_MAX_LAG"]
    if lag is not None and not (isinstance(lag, int) and not isinstance(lag, bool) and lag > 0):
        errors.append(
            Error(
                "NEXUS_SSE['SLOW_READER_MAX_LAG'] must be a positive integer or None.",
                hint=f"Events a stream may fall behind its run before it is ended for a slow reader (default "
                f"{conf.DEFAULTS['SLOW_READER_MAX_LAG']}; streams are looked at {READ_BATCH} events at a "
                f"time). None never ends them.",
                id="nexus_sse.E003",
            )
        )
    if not (_is_number(config["WORKFLOW_CACHE_SECONDS"]) and config["WORKFLOW_CACHE_SECONDS"] >= 0):
        errors.append(
            Error("NEXUS_SSE['WORKFLOW_CACHE_SECONDS'] must be a number >= 0.", id="nexus_sse.E003")
        )
    if config["DEFAULT_ACCESS"] not in ("public", "authenticated", "permission"):
        errors.append(
            Error(
                "NEXUS_SSE['DEFAULT_ACCESS'] must be 'public', 'authenticated' or 'permission'.",
                id="nexus_sse.E007",
            )
        )
    rate = config["DEFAULT_RATE_LIMIT"]
    from nexus_sse.models import RATE_RE

    if rate is not None and not (isinstance(rate, str) and RATE_RE.match(rate)):
        errors.append(
            Error(
                "NEXUS_SSE['DEFAULT_RATE_LIMIT'] must look like '10/min' (s, min, hour, day) or None.",
                id="nexus_sse.E007",
            )
        )
    for key in ("METRICS_ENABLED", "SYNC_ON_MIGRATE", "FAST_PATH"):  # "no" or "False" would be truthy
        if not isinstance(config[key], bool):
            errors.append(Error(f"NEXUS_SSE[{key!r}] must be True or False.", id="nexus_sse.E003"))
    if config["EXPOSE_ERRORS"] is not None and not isinstance(config["EXPOSE_ERRORS"], bool):
        errors.append(
            Error(
                "NEXUS_SSE['EXPOSE_ERRORS'] must be True, False or None (follow DEBUG).", id="nexus_sse.E003"
            )
        )
    if config["METRICS_TOKEN"] is not None and not (
        isinstance(config["METRICS_TOKEN"], str) and config["METRICS_TOKEN"]
    ):
        errors.append(
            Error("NEXUS_SSE['METRICS_TOKEN'] must be a non-empty string or None.", id="nexus_sse.E003")
        )
    if config["EXECUTOR"] not in ("inprocess", "tasks"):
        errors.append(Error("NEXUS_SSE['EXECUTOR'] must be 'inprocess' or 'tasks'.", id="nexus_sse.E009"))
    elif config["EXECUTOR"] == "tasks" and config["EVENT_LOG"] == "memory":
        errors.append(
            Error(
                "NEXUS_SSE['EXECUTOR'] = 'tasks' needs a shared event log: workers and web "
                "processes must see the same runs.",
                hint="Set NEXUS_SSE['EVENT_LOG'] = 'redis'.",
                id="nexus_sse.E009",
            )
        )
    for key in ("TASKS_BACKEND", "TASKS_QUEUE"):
        if not (isinstance(config[key], str) and config[key]):
            errors.append(
                Error(
                    f"NEXUS_SSE[{key!r}] must be a non-empty string (a TASKS alias, a queue name).",
                    id="nexus_sse.E009",
                )
            )
    errors += _check_event_log(config)
    errors += _check_llm(config)
    if not getattr(settings, "ASGI_APPLICATION", None):
        errors.append(
            Warning(
                "ASGI_APPLICATION is not set: under WSGI an event stream is collected to its end and never flushes.",
                hint="Serve the site with an ASGI server (daphne or uvicorn) and set ASGI_APPLICATION.",
                id="nexus_sse.W001",
            )
        )
    return errors


def _check_event_log(config: dict) -> list:
    from nexus_sse.eventlog import backend_class

    if not isinstance(config["EVENT_LOG_OPTIONS"], dict):
        return [Error("NEXUS_SSE['EVENT_LOG_OPTIONS'] must be a dict.", id="nexus_sse.E004")]
    if not isinstance(config["EVENT_LOG"], str):  # import_string would raise AttributeError/TypeError
        return [
            Error(
                f"NEXUS_SSE['EVENT_LOG'] must be a string, not {config['EVENT_LOG']!r}.",
                hint="Use 'memory', 'redis' or a dotted path to a BaseEventLog subclass.",
                id="nexus_sse.E004",
            )
        ]
    try:
        cls = backend_class(config["EVENT_LOG"])
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="Use 'memory', 'redis' or a dotted path to a BaseEventLog subclass.",
                id="nexus_sse.E004",
            )
        ]
    check = getattr(cls, "check_options", None)
    return list(check(config["EVENT_LOG_OPTIONS"])) if check else []


def _check_llm(config: dict) -> list:
    from django.utils.module_loading import import_string

    from nexus_sse.llm.base import BACKEND_ALIASES

    providers = config["LLM_PROVIDERS"]
    if not isinstance(providers, dict):
        return [Error("NEXUS_SSE['LLM_PROVIDERS'] must be a dict of alias -> options.", id="nexus_sse.E005")]
    errors = []
    for alias, options in providers.items():
        backend = options.get("BACKEND", alias) if isinstance(options, dict) else None
        if not isinstance(backend, str):
            errors.append(
                Error(f"NEXUS_SSE['LLM_PROVIDERS'][{alias!r}] needs a BACKEND.", id="nexus_sse.E005")
            )
            continue
        try:
            import_string(BACKEND_ALIASES.get(backend, backend))
        except ImportError as exc:
            errors.append(
                Error(f"LLM provider {alias!r}: cannot import {backend!r}: {exc}", id="nexus_sse.E005")
            )
    default = config["DEFAULT_LLM_PROVIDER"]
    if not isinstance(default, str) or default not in providers:  # a list would raise TypeError in `in`
        errors.append(
            Error(
                f"NEXUS_SSE['DEFAULT_LLM_PROVIDER'] = {config['DEFAULT_LLM_PROVIDER']!r} is not in LLM_PROVIDERS.",
                id="nexus_sse.E006",
            )
        )
    return errors
