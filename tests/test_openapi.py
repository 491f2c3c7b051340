"""The OpenAPI schema documents every route, SSE included, and passes an OpenAPI validator."""

import httpx
import pytest
import yaml
from openapi_spec_validator import validate


@pytest.fixture(scope="module")
def schema(uvicorn_server):
    with httpx.Client(base_url=uvicorn_server.url, timeout=20) as client:
        response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.text)


def test_the_schema_is_valid_openapi(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_every_route_is_documented(schema):
    paths = schema["paths"]
    for path, methods in {
        "/workflows/{name}/execute": {"get", "post"},
        "/runs/{run_id}/events": {"get"},
        "/runs/{run_id}": {"get"},
        "/runs/{run_id}/cancel": {"post"},
        "/api/workflows/": {"get", "post"},
        "/api/workflows/{slug}/": {"get", "put", "patch", "delete"},
        "/api/runs/": {"get"},
        "/api/runs/{id}/": {"get"},
        "/api/runs/{id}/cancel/": {"post"},
        "/api/stream-tokens/": {"post"},
    }.items():
        assert methods <= set(paths[path]), path


def test_sse_responses_name_their_events_and_errors(schema):
    post = schema["paths"]["/workflows/{name}/execute"]["post"]
    stream = post["responses"]["200"]["content"]["text/event-stream"]
    assert set(stream["x-events"]) == {"start", "progress", "token", "complete", "error"}
    assert post["responses"]["429"]["content"]["application/json"]["schema"]["$ref"].endswith("/NexusError")
    components = schema["components"]["schemas"]
    assert "CancelledError" in components["NexusError"]["properties"]["error_type"]["enum"]
    assert {"StartEvent", "ProgressEvent", "TokenEvent", "CompleteEvent", "ExecuteRequest"} <= set(components)
    headers = {p["name"] for p in post["parameters"]}
    assert {"Last-Event-ID", "lastEventId", "stream_token"} <= headers


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_are_served_offline(uvicorn_server, page):
    with httpx.Client(base_url=uvicorn_server.url, timeout=10) as client:
        response = client.get(page)
    assert response.status_code == 200
    assert "drf_spectacular_sidecar" in response.text and "cdn.jsdelivr" not in response.text
