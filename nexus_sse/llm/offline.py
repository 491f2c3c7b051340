"""The offline demo provider: a deterministic reply, streamed word by word. No network, no key."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from nexus_sse.llm.base import BaseProvider, Chunk


class OfflineProvider(BaseProvider):
    """Demo provider: answers by restating the last user message, so ``make run`` works offline.

    Options: ``TOKEN_DELAY`` (seconds between tokens, default 0.03) so streaming is visible.
    """

    name = "offline"
    default_model = "offline-demo"

    def reply(self, messages: list[dict[str, str]], max_tokens: int | None) -> list[str]:
        last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        turns = sum(1 for m in messages if m["role"] == "user")
        text = (
            f'You said: "{last.strip()}". This reply comes from the offline demo provider '
            f"(message {turns} of this conversation); configure an OpenAI-compatible provider "
            "for real answers."
        )
        tokens = re.findall(r"\S+\s*", text)
        return tokens[:max_tokens] if max_tokens else tokens

    async def stream(
        self,
        *,
        model: str | None,
        messages: list[dict[str, str]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the interface's; no network here)
        **_: Any,
    ) -> AsyncIterator[Chunk]:
        delay = float(self.options.get("TOKEN_DELAY", 0.03))
        tokens = self.reply(messages, max_tokens)
        for i, token in enumerate(tokens):
            if delay and i:
                await asyncio.sleep(delay)
            yield Chunk(delta=token)
        prompt_words = sum(len(m["content"].split()) for m in messages)
        yield Chunk(
            usage={
                "prompt_tokens": prompt_words,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_words + len(tokens),
            }
        )
