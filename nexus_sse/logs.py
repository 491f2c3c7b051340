"""Put the run id on every log line about a run: ``%(run_id)s`` in a formatter, "-" elsewhere."""

from __future__ import annotations

import contextvars
import logging

current_run: contextvars.ContextVar[str] = contextvars.ContextVar("nexus_sse_run", default="-")


class RunIdFilter(logging.Filter):
    """Add ``record.run_id`` from the run being executed or streamed in this context."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = current_run.get()
        return True
