"""The app works under any URL prefix, including mounted twice."""

import pytest
from django.test import AsyncClient, override_settings


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF="tests.urls_prefixed")
@pytest.mark.parametrize("prefix", ["/nexus/api", "/second"])
async def test_execute_and_run_urls_carry_the_prefix(prefix):
    from asgiref.sync import sync_to_async

    from nexus_sse.registry import sync_code_workflows

    await sync_to_async(sync_code_workflows)()
    client = AsyncClient()
    response = await client.post(
        f"{prefix}/workflows/greet/execute",
        {"inputs": {"name": "P"}, "mode": "async"},
        content_type="application/json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["events_url"] == f"{prefix}/runs/{body['run_id']}/events"
    assert body["status_url"] == f"{prefix}/runs/{body['run_id']}"
    stream = await client.get(body["events_url"])
    content = b"".join([chunk async for chunk in stream.streaming_content])
    assert b"event: complete" in content and b"Hello, P!" in content
    status = await client.get(body["status_url"])
    assert status.json()["status"] == "completed"
