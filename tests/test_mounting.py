"""The app works under any URL prefix, including mounted twice, on the fast path and through Django."""

import pytest
from django.test import override_settings

from tests.inprocess import request, served_by_django

# A cookie sends a request through Django's handler (tests/inprocess.py).
PATHS = {"fast-path": {}, "django": {"Cookie": "anything=1"}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("prefix", ["/nexus/api", "/second"])
@pytest.mark.parametrize("path", PATHS)
async def test_execute_and_run_urls_carry_the_prefix(workflows, prefix, path):
    headers = PATHS[path]
    with override_settings(ROOT_URLCONF="tests.urls_prefixed"):
        response = await request(
            "POST",
            f"{prefix}/workflows/greet/execute",
            json={"inputs": {"name": "P"}, "mode": "async"},
            headers=headers,
        )
        assert response.status == 202 and served_by_django(response) is bool(headers)
        body = response.json()
        assert body["events_url"] == f"{prefix}/runs/{body['run_id']}/events"
        assert body["status_url"] == f"{prefix}/runs/{body['run_id']}"
        stream = await request("GET", body["events_url"], headers=headers)
        assert stream.status == 200 and served_by_django(stream) is bool(headers)
        assert b"event: complete" in stream.body and b"Hello, P!" in stream.body
        status = await request("GET", body["status_url"], headers=headers)
    assert status.json()["status"] == "completed"
