"""The provider interface: stream deltas of a chat completion, cancellable, with usage when known."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from nexus_sse import conf

BACKEND_ALIASES = {
    "offline": "nexus_sse.llm.offline.OfflineProvider",
    "openai": "nexus_sse.llm.openai.OpenAIProvider",
}


@dataclass
class Chunk:
    """One piece of a streamed reply: text ``delta`` and/or final ``usage`` counts."""

    delta: str = ""
    usage: dict[str, int] | None = None


class BaseProvider:
    """Base of LLM providers. Implement ``stream``; cancellation is the caller cancelling the task."""

    name: ClassVar[str] = ""
    default_model: str = ""

    def __init__(self, alias: str, **options: Any) -> None:
        self.alias = alias
        self.options = options

    def stream(
        self,
        *,
        model: str | None,
        messages: list[dict[str, str]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[Chunk]:  # pragma: no cover
        raise NotImplementedError


_instances: dict[str, BaseProvider] = {}


def get_provider(alias: str | None = None) -> BaseProvider:
    """Return the provider configured under ``alias`` (the default provider when None)."""
    alias = alias or conf.get("DEFAULT_LLM_PROVIDER")
    providers = conf.get("LLM_PROVIDERS")
    if alias not in providers:
        from nexus_sse.exceptions import NodeError

        raise NodeError(f"unknown LLM provider {alias!r}")
    options = dict(providers[alias])
    key = f"{alias}:{sorted(options.items())!r}"
    if key not in _instances:
        backend: str = options.pop("BACKEND", alias)
        path = BACKEND_ALIASES.get(backend, backend)
        try:
            cls = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"NEXUS_SSE['LLM_PROVIDERS'][{alias!r}]['BACKEND'] = {backend!r} cannot be imported: {exc}"
            ) from exc
        _instances[key] = cls(alias, **options)
    return _instances[key]
