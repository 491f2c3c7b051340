"""The API's only parser: JSON within MAX_BODY_BYTES and MAX_JSON_DEPTH, like the execute endpoints.

DRF's JSONParser reads a body of any size, and a deeply nested document makes it raise RecursionError
(a 500); this one answers 413 and 400 instead, and refuses what the execute endpoints refuse (NaN,
NUL characters, lone surrogates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.parsers import BaseParser

from nexus_sse import conf, payload
from nexus_sse.exceptions import PayloadTooLarge


class LimitedJSONParser(BaseParser):
    """Parse ``application/json`` bodies with nexus_sse's size and depth limits."""

    media_type = "application/json"

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        """Read at most MAX_BODY_BYTES (one more byte tells a body that is too large) and parse it."""
        limit = conf.get("MAX_BODY_BYTES")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        return payload.parse_json(body)
