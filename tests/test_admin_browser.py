"""The admin's Try-it page and live run page, in a real browser."""

import json

import pytest
from playwright.sync_api import expect

from nexus_sse.models import Workflow
from tests import factories
from tests.live import ServerProcess

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(django_db_setup):
    with ServerProcess("uvicorn", app="tests.asgi_static:application") as proc:
        yield proc


def login(page, server):
    cookies = factories.session_cookies(factories.user("root", superuser=True))
    page.context.add_cookies([{"name": k, "value": v, "url": server.url} for k, v in cookies.items()])


def test_try_it_streams_the_runs_events_onto_the_page(page, server, workflows):
    login(page, server)
    typed = Workflow.objects.get(slug="typed")
    page.goto(f"{server.url}/admin/nexus_sse/workflow/{typed.pk}/try/")
    page.fill("#input-count", "3")
    page.check("#input-flag")
    page.fill("#input-tags", '["a", "b"]')
    page.click("input[type=submit]")
    out = page.locator("#nexus-events")
    expect(out).to_contain_text("complete")
    text = out.text_content()
    assert text.index("start") < text.index("progress") < text.index("complete")
    complete = json.loads(next(line for line in text.splitlines() if line.startswith("complete "))[9:])
    assert complete["result"] == {"count": 3, "ratio": 0.5, "flag": True, "tags": ["a", "b"], "name": "x"}
    assert page.js_errors == []


def test_a_live_run_page_shows_events_as_they_happen(page, server, workflows):
    login(page, server)
    import httpx

    with httpx.Client(base_url=server.url, timeout=10) as client:
        run_id = client.post(
            "/workflows/slow/execute", json={"inputs": {"seconds": 2}, "mode": "async"}
        ).json()["run_id"]
    page.goto(f"{server.url}/admin/nexus_sse/run/{run_id}/change/")
    expect(page.locator("#nexus-events")).to_contain_text("progress")
    # when the run ends the page reloads as a finished run (no live panel)
    expect(page.locator("#nexus-live")).to_have_count(0, timeout=10000)
    expect(page.locator("body")).to_contain_text("completed")
