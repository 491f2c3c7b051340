"""OpenAI-compatible chat completions: OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp server, LM Studio...

Built on httpx + httpx-sse (already nexus_sse's HTTP stack) rather than the ``openai`` SDK: one
endpoint, streamed, is all we use, and this way cancellation is closing the response.

Options (in ``NEXUS_SSE["LLM_PROVIDERS"][alias]``):

- ``BASE_URL``: e.g. ``https://api.openai.com/v1`` (default), ``http://127.0.0.1:11434/v1`` (Ollama)
- ``API_KEY`` or ``API_KEY_ENV`` (default ``OPENAI_API_KEY``): sent as ``Authorization: Bearer``
- ``MODEL``: used when the node's config names none
- ``TIMEOUT`` (30 s, per read), ``MAX_RETRIES`` (2) and ``BACKOFF`` (0.5 s, doubled per retry, with
  jitter; ``Retry-After`` wins) for 429 and 5xx answers and failed connections before the first token
- ``AZURE_API_VERSION``: talk to Azure OpenAI (``api-key`` header, ``?api-version=``; ``BASE_URL`` is the
  deployment URL)
- ``INCLUDE_USAGE`` (True): ask for token counts (``stream_options``); turn off for servers that refuse it
- ``HEADERS``: extra headers
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource

from nexus_sse.exceptions import ProviderError, RateLimitError, RunTimeoutError
from nexus_sse.llm.base import BaseProvider, Chunk

RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class OpenAIProvider(BaseProvider):
    """Stream chat completions from any server speaking the OpenAI protocol."""

    name = "openai"

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        self.base_url = str(options.get("BASE_URL", "https://api.openai.com/v1")).rstrip("/")
        self.default_model = options.get("MODEL", "gpt-4o-mini")

    def _key(self) -> str | None:
        return self.options.get("API_KEY") or os.environ.get(
            self.options.get("API_KEY_ENV", "OPENAI_API_KEY")
        )

    def _request(self, body: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
        headers = {"Accept": "text/event-stream", **self.options.get("HEADERS", {})}
        params: dict[str, str] = {}
        key = self._key()
        if self.options.get("AZURE_API_VERSION"):
            params["api-version"] = self.options["AZURE_API_VERSION"]
            if key:
                headers["api-key"] = key
        elif key:
            headers["Authorization"] = f"Bearer {key}"
        return f"{self.base_url}/chat/completions", headers, params

    async def stream(
        self,
        *,
        model: str | None,
        messages: list[dict[str, str]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        # the interface's per-read HTTP timeout (httpx), not a deadline for the whole call
        timeout: float | None = None,  # noqa: ASYNC109
        **_: Any,
    ) -> AsyncIterator[Chunk]:
        body = self._body(model, messages, temperature, max_tokens)
        url, headers, params = self._request(body)
        retries = int(self.options.get("MAX_RETRIES", 2))
        backoff = float(self.options.get("BACKOFF", 0.5))
        read_timeout = float(timeout or self.options.get("TIMEOUT", 30.0))
        limits = httpx.Timeout(read_timeout, connect=min(10.0, read_timeout))
        async with httpx.AsyncClient(timeout=limits) as client:
            for attempt in range(retries + 1):
                started = False
                try:
                    async with client.stream(
                        "POST", url, json=body, headers=headers, params=params
                    ) as response:
                        if response.status_code >= 400:
                            await asyncio.sleep(await self._retry_delay(response, attempt, retries, backoff))
                            continue
                        if "text/event-stream" not in response.headers.get("content-type", ""):
                            # a server that ignores "stream": true answers one JSON completion
                            await response.aread()
                            for chunk in _whole_completion(_json(response)):
                                yield chunk
                            return
                        async for sse in EventSource(response).aiter_sse():
                            if sse.data.strip() == "[DONE]":
                                return
                            for chunk in _chunks(sse.data):
                                if chunk.delta:
                                    started = True
                                yield chunk
                        return
                except (httpx.TransportError, json.JSONDecodeError) as exc:
                    # (before the first token a retry is invisible; after it, it would repeat text)
                    if started or attempt >= retries:
                        raise _failure(exc, read_timeout) from None
                await asyncio.sleep(backoff * 2**attempt * random.uniform(0.5, 1.5))

    def _body(
        self,
        model: str | None,
        messages: list[dict[str, str]],
        temperature: float | None,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model or self.default_model, "messages": messages, "stream": True}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if self.options.get("INCLUDE_USAGE", True):
            body["stream_options"] = {"include_usage": True}
        return body

    async def _retry_delay(
        self, response: httpx.Response, attempt: int, retries: int, backoff: float
    ) -> float:
        """The wait before retrying a refused request; raise the error if it is not worth a retry."""
        await response.aread()
        if response.status_code in RETRY_STATUSES and attempt < retries:
            return self._delay(response, attempt, backoff)
        raise self._error(response)

    @staticmethod
    def _delay(response: httpx.Response, attempt: int, backoff: float) -> float:
        try:
            return min(float(response.headers["retry-after"]), 60.0)
        except (KeyError, ValueError):
            return backoff * 2**attempt * random.uniform(0.5, 1.5)

    def _error(self, response: httpx.Response) -> Exception:
        status = response.status_code
        if status == 429:
            return RateLimitError("the model server is rate limiting requests; try again later")
        if status in (401, 403):
            return ProviderError("the model server refused the credentials (check the provider's API key)")
        if status == 404:
            return ProviderError("the model server does not know this model or endpoint")
        if status == 400:
            return ProviderError(f"the model server refused the request: {_message(_json(response))}")
        return ProviderError(f"the model server failed (HTTP {status})")


def _chunks(data: str) -> list[Chunk]:
    """The chunks of one streamed event's JSON (none for an empty event)."""
    if not data:
        return []
    chunk = json.loads(data)
    if "error" in chunk:
        raise ProviderError(f"the model server reported an error: {_message(chunk)}")
    chunks = []
    for choice in chunk.get("choices") or []:
        delta = (choice.get("delta") or {}).get("content")
        if delta:
            chunks.append(Chunk(delta=delta))
    if chunk.get("usage"):
        chunks.append(Chunk(usage=chunk["usage"]))
    return chunks


def _failure(exc: Exception, read_timeout: float) -> Exception:
    """The error a failed connection ends the stream with."""
    if isinstance(exc, httpx.TimeoutException):
        return RunTimeoutError(f"the model server did not answer within {read_timeout:g}s")
    if isinstance(exc, httpx.ConnectError):
        return ProviderError("could not connect to the model server")
    return ProviderError(f"lost the connection to the model server ({type(exc).__name__})")


def _whole_completion(body: Any) -> list[Chunk]:
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise ProviderError("the model server sent an answer that is not a chat completion")
    content = (choices[0].get("message") or {}).get("content") or ""
    chunks = [Chunk(delta=content)] if content else []
    if body.get("usage"):
        chunks.append(Chunk(usage=body["usage"]))
    return chunks


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _message(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or "no details")[:300]
