"""Demo workflows, discovered by nexus_sse at start-up like admin.py modules."""

import asyncio

import nexus_sse
from nexus_sse import WorkflowBuilder

# chat: the seed's example, unchanged but for the imports.
chat = WorkflowBuilder()
chat.add_node(
    "LLMAgentNode",
    "chat_agent",
    {
        "system_prompt": "You are a helpful AI assistant.",
        "model": "gpt-4",
        "temperature": 0.7,
        "max_tokens": 500,
    },
)
nexus_sse.register("chat", chat, description="Chat with an LLM agent (offline demo provider by default).")


@nexus_sse.register_function("demo.fetch")
async def fetch(topic: str, delay: float = 1.0, ctx=None) -> dict:
    """Pretend to gather sources about ``topic``, reporting progress as it goes."""
    sources = [f"{topic} overview", f"{topic} history", f"{topic} in practice"]
    for i, _ in enumerate(sources, 1):
        await asyncio.sleep(delay / len(sources))
        await ctx.progress(100 * i / len(sources), f"source {i} of {len(sources)}")
    return {"sources": sources}


@nexus_sse.register_function("demo.summarise")
def summarise(sources: list, delay: float = 1.0) -> dict:
    """A sync step (runs in a worker thread): condense the sources."""
    import time

    time.sleep(delay)
    return {"summary": "; ".join(sources)}


research = WorkflowBuilder()
research.add_node("FunctionNode", "fetch", {"function": "demo.fetch"})
research.add_node("FunctionNode", "summarise", {"function": "demo.summarise"})
research.add_node("TemplateNode", "report", {"template": "Report on {topic}: {summary}."})
research.add_connection("fetch", "sources", "summarise", "sources")
research.add_connection("summarise", "summary", "report", "summary")
nexus_sse.register(
    "research",
    research,
    description="Three steps that take visible time (about 2 s): watch progress events and keepalives.",
)

greet = WorkflowBuilder()
greet.add_node("TemplateNode", "greet", {"template": "Hello, {name}!"})
nexus_sse.register("greet", greet, description="One instant step: the smallest workflow.")
