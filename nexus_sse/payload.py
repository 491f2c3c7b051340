"""Reading requests: body size and depth limits, the execute body, query inputs, Last-Event-ID."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

from django.http import HttpRequest

from nexus_sse import conf
from nexus_sse.enums import RunMode
from nexus_sse.exceptions import PayloadTooLarge, ValidationError
from nexus_sse.workflows.schema import json_type

MODES = tuple(RunMode.values)
RESERVED_QUERY = {"inputs", "mode", "lastEventId", "last_event_id", "stream_token"}
BODY_KEYS = {"inputs", "parameters", "mode"}


def read_json_body(request: HttpRequest) -> Any:
    """The parsed JSON body (None when empty), within MAX_BODY_BYTES and MAX_JSON_DEPTH."""
    limit = conf.get("MAX_BODY_BYTES")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ValidationError("invalid Content-Length header") from None
    if declared > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    if not body.strip():
        return None
    content_type = request.content_type or ""
    # curl -d sends application/x-www-form-urlencoded; its body is still our JSON.
    if content_type.startswith("multipart/") or content_type.endswith("xml"):
        raise ValidationError(f"unsupported Content-Type {content_type!r}; send application/json")
    return parse_json(body)


def parse_json(body: bytes) -> Any:
    """Parse a JSON request body, within MAX_JSON_DEPTH and without values a run could not carry."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # also UnicodeDecodeError, and ints past Python's 4300-digit limit
        raise ValidationError(f"malformed JSON: {exc}", path="body") from None
    except RecursionError:
        raise ValidationError("JSON nested too deeply", path="body") from None
    check_depth(data, conf.get("MAX_JSON_DEPTH"))
    return data


def check_depth(value: Any, limit: int, path: str = "body") -> None:
    """Refuse JSON nested deeper than ``limit``, and values a run could not record or send.

    Python's json accepts NaN, Infinity (also 1e400) and lone surrogates ("\\ud800"), which no JSON
    encoder or UTF-8 text can carry on; PostgreSQL's jsonb refuses NUL characters. Caught here they
    are a 400, not a run that fails at its end with an InternalError.
    """
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"{item} is not a JSON number; send a finite number", path=path)
        elif isinstance(item, (dict, list)):
            if depth > limit:
                raise ValidationError(f"JSON nested deeper than {limit} levels", path=path)
            if isinstance(item, dict):
                for key in item:
                    _check_text(key, path)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValidationError("text may not contain NUL (\\u0000) characters", path=path)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("text contains a lone surrogate (invalid Unicode)", path=path) from None


def execute_body(data: Any) -> tuple[dict[str, Any], RunMode | None]:
    """``(inputs, mode)`` from an execute body: ``{"inputs"|"parameters": {...}, "mode": ...}``."""
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ValidationError("the body must be a JSON object", path="body")
    unknown = set(data) - BODY_KEYS
    if unknown:
        raise ValidationError(f"unknown body fields {sorted(unknown)}; expected inputs and mode", path="body")
    if "inputs" in data and "parameters" in data:
        raise ValidationError("send either 'inputs' or 'parameters', not both", path="body")
    inputs = data.get("inputs", data.get("parameters", {}))
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        raise ValidationError("'inputs' must be a JSON object", path="inputs")
    return inputs, parse_mode(data.get("mode"))


def parse_mode(mode: Any) -> RunMode | None:
    if mode is None:
        return None
    if mode not in MODES:
        raise ValidationError(f"'mode' must be one of {list(MODES)}", path="mode")
    return RunMode(mode)


def query_inputs(request: HttpRequest, schema: dict[str, Any]) -> dict[str, Any]:
    """Inputs of a GET: ``?inputs=<json>`` or plain parameters, converted by the schema's types."""
    if "inputs" in request.GET:
        try:
            inputs: Any = json.loads(request.GET["inputs"])
        except ValueError as exc:
            raise ValidationError(f"'inputs' is not valid JSON: {exc}", path="inputs") from None
        except RecursionError:
            raise ValidationError("'inputs' nested too deeply", path="inputs") from None
        if not isinstance(inputs, dict):
            raise ValidationError("'inputs' must be a JSON object", path="inputs")
        check_depth(inputs, conf.get("MAX_JSON_DEPTH"), path="inputs")
        return inputs
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    inputs = {}
    for key in request.GET:
        if key in RESERVED_QUERY:
            continue
        values = request.GET.getlist(key)
        node, dot, param = key.partition(".")
        if dot and json_type(properties.get(node)) == "object":
            # "node.param=value" feeds one node, like {"node": {"param": value}} in a body
            prop = properties[node].get("properties", {}).get(param, {})
            inputs.setdefault(node, {})[param] = _convert(key, values, json_type(prop))
            continue
        prop = properties.get(key, {})
        inputs[key] = _convert(key, values, json_type(prop))
    check_depth(inputs, conf.get("MAX_JSON_DEPTH"), path="inputs")  # ?ratio=nan, %00, JSON values
    return inputs


def _convert(key: str, values: list[str], json_type: Any) -> Any:
    if json_type == "array":
        if len(values) == 1 and values[0].startswith("["):
            return _json(key, values[0])
        return values
    value = values[-1]
    try:
        if json_type == "integer":
            return int(value)
        if json_type == "number":
            return float(value)
    except ValueError:
        raise ValidationError(f"input {key!r} must be a {json_type}", path=f"inputs.{key}") from None
    if json_type == "boolean":
        if value.lower() in ("true", "1", "yes", "on"):
            return True
        if value.lower() in ("false", "0", "no", "off"):
            return False
        raise ValidationError(f"input {key!r} must be true or false", path=f"inputs.{key}")
    if json_type == "object":
        return _json(key, value)
    return value


def _json(key: str, value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        raise ValidationError(f"input {key!r} must be JSON", path=f"inputs.{key}") from None


def last_event_id(request: HttpRequest) -> tuple[str, int] | None:
    """``(run_id, seq)`` from the Last-Event-ID header or ``?lastEventId=`` / ``?last_event_id=``."""
    raw = request.META.get("HTTP_LAST_EVENT_ID")
    if not raw and request.META.get("QUERY_STRING"):  # (no query string: skip building a QueryDict)
        raw = request.GET.get("lastEventId") or request.GET.get("last_event_id")
    if not raw:
        return None
    return parse_event_id(raw)


def parse_event_id(raw: str) -> tuple[str, int]:
    run_part, sep, seq_part = raw.strip().rpartition(":")
    try:
        if not sep:
            raise ValueError
        run_id = str(uuid.UUID(run_part))
        seq = int(seq_part)
        if seq < 0 or not seq_part.isdigit():
            raise ValueError
    except ValueError:
        raise ValidationError(
            "invalid Last-Event-ID: expected '<run_id>:<seq>' as sent in the stream's id: lines",
            path="Last-Event-ID",
        ) from None
    return run_id, seq
