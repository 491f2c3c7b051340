"""Typed events: each event's data fields become attributes; ``data`` keeps the whole payload."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Event:
    """An event of a run. ``id`` is ``<run_id>:<seq>`` on nexus_sse (a bare counter on Kailash Nexus)."""

    event: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @property
    def run_id(self) -> str | None:
        if self.data.get("run_id"):
            return self.data["run_id"]
        return self.id.rpartition(":")[0] or None if self.id and ":" in self.id else None

    @property
    def seq(self) -> int | None:
        tail = (self.id or "").rpartition(":")[2]
        return int(tail) if tail.isdigit() else None

    @property
    def terminal(self) -> bool:
        return self.event in ("complete", "error")

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(name) from None


class StartEvent(Event):
    """``workflow_id``, ``version``, ``run_id``, ``timestamp``."""


class ProgressEvent(Event):
    """``node``, ``status`` (started/running/completed), ``percent``."""


class TokenEvent(Event):
    """``node``, ``delta``."""


class CompleteEvent(Event):
    """``result``, ``outputs``, ``execution_time``."""


class ErrorEvent(Event):
    """``error``, ``error_type``."""


TYPES = {
    "start": StartEvent,
    "progress": ProgressEvent,
    "token": TokenEvent,
    "complete": CompleteEvent,
    "error": ErrorEvent,
}


def make_event(name: str, raw: str, event_id: str | None) -> Event:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"text": raw}
    if not isinstance(data, dict):
        data = {"value": data}
    return TYPES.get(name, Event)(event=name, data=data, id=event_id or None)
