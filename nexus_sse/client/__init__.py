"""A Python client for nexus_sse (sync and async), importable without Django settings.

    from nexus_sse.client import NexusClient
    with NexusClient("http://127.0.0.1:8000") as client:
        for event in client.stream("chat", {"message": "Hello!"}):
            print(event)
        print(client.run("greet", {"name": "Ann"}))
"""

from nexus_sse.client.events import (
    CompleteEvent,
    ErrorEvent,
    Event,
    ProgressEvent,
    StartEvent,
    TokenEvent,
)
from nexus_sse.client.sync import NexusClient, run, stream
from nexus_sse.client.aio import AsyncNexusClient
from nexus_sse.client.errors import ConnectionLost

__all__ = [
    "NexusClient", "AsyncNexusClient", "stream", "run", "ConnectionLost",
    "Event", "StartEvent", "ProgressEvent", "TokenEvent", "CompleteEvent", "ErrorEvent",
]
