"""A Python client for nexus_sse (sync and async), importable without Django settings.

from nexus_sse.client import NexusClient
with NexusClient("http://127.0.0.1:8000") as client:
    for event in client.stream("chat", {"message": "Hello!"}):
        print(event)
    print(client.run("greet", {"name": "Ann"}))
"""

from nexus_sse.client.aio import AsyncNexusClient
from nexus_sse.client.errors import ConnectionLost
from nexus_sse.client.events import (
    CompleteEvent,
    ErrorEvent,
    Event,
    ProgressEvent,
    StartEvent,
    TokenEvent,
)
from nexus_sse.client.sync import NexusClient, run, stream

__all__ = [
    "AsyncNexusClient",
    "CompleteEvent",
    "ConnectionLost",
    "ErrorEvent",
    "Event",
    "NexusClient",
    "ProgressEvent",
    "StartEvent",
    "TokenEvent",
    "run",
    "stream",
]
