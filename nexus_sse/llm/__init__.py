"""LLM providers, selected by alias from NEXUS_SSE["LLM_PROVIDERS"]."""

from nexus_sse.llm.base import BaseProvider, Chunk, get_provider

__all__ = ["BaseProvider", "Chunk", "get_provider"]
