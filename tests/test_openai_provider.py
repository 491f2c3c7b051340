"""The OpenAI-compatible provider against a local server speaking the real streaming protocol."""

import asyncio

import httpx
import pytest

from nexus_sse.exceptions import ProviderError, RateLimitError, RunTimeoutError
from nexus_sse.llm.openai import OpenAIProvider
from tests.fake_openai import FakeOpenAI
from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, take

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


def provider(fake, **options):
    return OpenAIProvider("fake", BASE_URL=fake.base_url, API_KEY="sk-secret", BACKOFF=0.01, **options)


async def collect(p, model="fake", **kwargs):
    deltas, usage = [], None
    async for chunk in p.stream(model=model, messages=MESSAGES, **kwargs):
        deltas.append(chunk.delta) if chunk.delta else None
        usage = chunk.usage or usage
    return deltas, usage


async def test_streams_deltas_and_usage_and_sends_the_request_openai_expects(fake):
    deltas, usage = await collect(provider(fake), temperature=0.7, max_tokens=50)
    assert "".join(deltas) == "Echo: hello there" and len(deltas) == 3
    assert usage == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    request = fake.requests[0]
    assert request["headers"]["Authorization"] == "Bearer sk-secret"
    assert request["body"] == {
        "model": "fake",
        "messages": MESSAGES,
        "stream": True,
        "temperature": 0.7,
        "max_tokens": 50,
        "stream_options": {"include_usage": True},
    }


async def test_the_api_key_can_come_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-env")
    await collect(OpenAIProvider("x", BASE_URL=fake.base_url, API_KEY_ENV="MY_KEY"))
    assert fake.requests[0]["headers"]["Authorization"] == "Bearer sk-env"


async def test_azure_style_uses_the_api_key_header_and_api_version(fake):
    await collect(provider(fake, AZURE_API_VERSION="2024-06-01"))
    request = fake.requests[0]
    assert request["headers"]["api-key"] == "sk-secret" and "Authorization" not in request["headers"]
    assert request["path"] == "/v1/chat/completions?api-version=2024-06-01"


async def test_a_429_is_retried_after_retry_after(fake):
    deltas, _ = await collect(provider(fake), model="fake-429-once")
    assert "".join(deltas) == "Echo: hello there" and len(fake.requests) == 2


@pytest.mark.parametrize(
    ("model", "error", "text"),
    [
        ("fake-500", ProviderError, "HTTP 500"),
        ("fake-401", ProviderError, "refused the credentials"),
        ("fake-error-chunk", ProviderError, "the model overheated"),
    ],
)
async def test_provider_errors_map_to_error_types_without_leaking(fake, model, error, text):
    with pytest.raises(error) as info:
        await collect(provider(fake, MAX_RETRIES=1), model=model)
    assert text in info.value.message
    assert "sk-secret" not in info.value.message and "stack trace" not in info.value.message
    if model == "fake-500":
        assert len(fake.requests) == 2  # retried once


async def test_a_server_that_ignores_stream_still_gives_the_whole_reply(fake):
    deltas, usage = await collect(provider(fake), model="fake-nostream")
    assert deltas == ["Echo: hello there"] and usage["total_tokens"] == 8


async def test_an_unreachable_server_is_a_node_error_after_the_retries():
    from tests.live import free_port

    p = OpenAIProvider(
        "down",
        BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
        API_KEY="sk-secret",
        MAX_RETRIES=1,
        BACKOFF=0.01,
    )
    with pytest.raises(ProviderError) as info:
        await collect(p)
    assert (
        info.value.error_type == "NodeError" and "could not connect to the model server" in info.value.message
    )
    assert "127.0.0.1" not in info.value.message and "sk-secret" not in info.value.message


async def test_rate_limits_that_outlast_the_retries_are_rate_limit_errors(fake):
    with pytest.raises(RateLimitError):
        await collect(provider(fake, MAX_RETRIES=0), model="fake-429-once")


async def test_a_silent_server_times_out(fake):
    with pytest.raises(RunTimeoutError):
        await collect(provider(fake, MAX_RETRIES=0), model="fake-hang", timeout=0.5)


async def test_cancelling_the_consumer_closes_the_connection(fake):
    got = asyncio.Event()

    async def consume():
        async for _chunk in provider(fake).stream(model="fake-slow", messages=MESSAGES):
            got.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(got.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the fake server notices when its next write fails
    assert await asyncio.to_thread(fake.disconnects.wait, 5)


def test_llm_agent_node_streams_provider_tokens_over_the_wire(fake, workflows):
    overrides = {
        "LLM_PROVIDERS": {
            "offline": {"BACKEND": "offline", "TOKEN_DELAY": 0},
            "fake": {
                "BACKEND": "openai",
                "BASE_URL": fake.base_url,
                "API_KEY": "sk-secret",
                "BACKOFF": 0.01,
                "MAX_RETRIES": 0,
            },
        }
    }
    with (
        ServerProcess("uvicorn", overrides=overrides) as server,
        httpx.Client(base_url=server.url, timeout=10) as c,
    ):
        events = take(
            c,
            "POST",
            "/workflows/fake_llm/execute",
            json={
                "inputs": {
                    "message": "hi you",
                    "messages": [
                        {"role": "user", "content": "before"},
                        {"role": "assistant", "content": "ok"},
                    ],
                }
            },
            headers=ACCEPT_SSE,
        )
        tokens = [e.json()["delta"] for e in events if e.event == "token"]
        result = events[-1].json()["result"]
        assert "".join(tokens) == result["response"] == "Echo: hi you"
        assert result["metadata"] == {
            "provider": "openai",
            "model": "fake",
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
        sent = fake.requests[-1]["body"]
        assert sent["messages"] == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "before"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "hi you"},
        ]
        assert sent["temperature"] == 0.2 and sent["max_tokens"] == 64
        failed = take(
            c,
            "POST",
            "/workflows/fake_llm_broken/execute",
            json={"inputs": {"message": "x"}},
            headers=ACCEPT_SSE,
        )
        error = failed[-1].json()
        assert error["error_type"] == "NodeError" and "refused the credentials" in error["error"]
        assert "sk-secret" not in error["error"]
