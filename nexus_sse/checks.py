"""System checks: bad backends, unknown NEXUS_SSE keys, bad values, no ASGI.

Each value is checked by its validator in ``conf.TABLE``; the checks that need two settings
(a backend and its options, the executor and the log, the default provider) follow, for
settings whose values passed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from nexus_sse import conf


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = conf.user_settings()
    if user is None:  # conf treats None like an absent setting
        user = {}
    if not isinstance(user, dict):
        return [Error("NEXUS_SSE must be a dict.", id="nexus_sse.E001")]
    errors: list[CheckMessage] = [
        Error(
            f"Unknown NEXUS_SSE key {key!r}.",
            hint=f"Valid keys: {', '.join(sorted(conf.DEFAULTS))}.",
            id="nexus_sse.E002",
        )
        for key in sorted(set(user) - set(conf.DEFAULTS))
    ]
    config = conf.get_config()
    bad = set()
    for row in conf.TABLE:
        message = row.error(config[row.name])
        if message is not None:
            bad.add(row.name)
            hint = row.hint() if callable(row.hint) else row.hint
            errors.append(Error(message, hint=hint, id=row.error_id))
    errors += _check_pairs(config, bad)
    if not getattr(settings, "ASGI_APPLICATION", None):
        errors.append(
            Warning(
                "ASGI_APPLICATION is not set: under WSGI an event stream is collected to its end "
                "and never flushes.",
                hint="Serve the site with an ASGI server (daphne or uvicorn) and set ASGI_APPLICATION.",
                id="nexus_sse.W001",
            )
        )
    return errors


def _check_pairs(config: dict[str, Any], bad: set[str]) -> list[CheckMessage]:
    """The checks of settings that depend on each other (skipped where a value is already bad)."""
    errors: list[CheckMessage] = []
    if not bad & {"EXECUTOR", "EVENT_LOG"}:
        errors += _check_executor(config)
    if not bad & {"EVENT_LOG", "EVENT_LOG_OPTIONS"}:
        errors += _check_event_log(config)
    if "LLM_PROVIDERS" not in bad:
        errors += _check_llm(config["LLM_PROVIDERS"])
        default = config["DEFAULT_LLM_PROVIDER"]
        if "DEFAULT_LLM_PROVIDER" not in bad and default not in config["LLM_PROVIDERS"]:
            errors.append(
                Error(
                    f"NEXUS_SSE['DEFAULT_LLM_PROVIDER'] = {default!r} is not in LLM_PROVIDERS.",
                    id="nexus_sse.E006",
                )
            )
    return errors


def _check_executor(config: dict[str, Any]) -> list[CheckMessage]:
    if config["EXECUTOR"] == "tasks" and config["EVENT_LOG"] == "memory":
        return [
            Error(
                "NEXUS_SSE['EXECUTOR'] = 'tasks' needs a shared event log: workers and web "
                "processes must see the same runs.",
                hint="Set NEXUS_SSE['EVENT_LOG'] = 'redis'.",
                id="nexus_sse.E009",
            )
        ]
    return []


def _check_event_log(config: dict[str, Any]) -> list[CheckMessage]:
    from nexus_sse.eventlog import backend_class

    try:
        cls = backend_class(config["EVENT_LOG"])
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint=conf.BACKEND_HINT,
                id="nexus_sse.E004",
            )
        ]
    check = getattr(cls, "check_options", None)
    return list(check(config["EVENT_LOG_OPTIONS"])) if check else []


def _check_llm(providers: dict[str, Any]) -> list[CheckMessage]:
    from django.utils.module_loading import import_string

    from nexus_sse.llm.base import BACKEND_ALIASES

    errors: list[CheckMessage] = []
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
    return errors
