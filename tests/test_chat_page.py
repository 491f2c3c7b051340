"""The chat page as served (no browser): URLs under any prefix, which workflows it offers, overrides, CSP."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from tests import factories


@pytest.fixture
def client(workflows):
    return Client()


def data_attributes(html: str) -> dict[str, str]:
    main = re.search(r'<main id="nexus-chat"[^>]*>', html).group(0)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', main))


@override_settings(ROOT_URLCONF="tests.urls_prefixed")
@pytest.mark.parametrize("prefix", ["/nexus/api", "/second"])
def test_every_url_the_page_calls_carries_the_mount_prefix(client, prefix):
    attrs = data_attributes(client.get(f"{prefix}/chat/").content.decode())
    assert attrs["execute-url"] == f"{prefix}/workflows/__workflow__/execute"
    assert attrs["events-url"] == f"{prefix}/runs/__run__/events"
    assert attrs["cancel-url"] == f"{prefix}/runs/__run__/cancel"
    assert attrs["status-url"] == f"{prefix}/runs/__run__"


def test_the_page_sets_the_csrf_cookie_and_has_no_inline_script_or_style(client):
    response = client.get("/chat/")
    html = response.content.decode()
    assert "csrftoken" in response.cookies
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.DOTALL) == [""] * len(scripts)
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_the_page_links_the_apps_icon(client):
    html = client.get("/chat/").content.decode()
    link = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
    assert link and link.group(1) == "/static/nexus_sse/favicon.svg"
    assert finders.find("nexus_sse/favicon.svg")  # a file the page can load


def test_the_selector_lists_chat_capable_workflows_the_visitor_may_run(client):
    html = client.get("/chat/").content.decode()
    options = re.findall(r'<option value="([^"]+)" data-demo="(\d)"', html)
    assert ("chat", "1") in options and ("fake_llm", "0") in options
    assert "greet" not in dict(options)  # no LLM agent: not a chat
    factories.set_policy("fake_llm", access="authenticated")
    assert "fake_llm" not in dict(
        re.findall(r'<option value="([^"]+)" data-demo="(\d)"', client.get("/chat/").content.decode())
    )


def test_a_workflow_is_preselected_by_its_url(client):
    html = client.get("/chat/fake_llm/").content.decode()
    assert re.search(r'<option value="fake_llm" data-demo="0" selected>', html)
    assert client.get("/chat/greet/").status_code == 404  # not a chat workflow
    assert client.get("/chat/nope/").status_code == 404


def test_a_site_template_overrides_the_page(client, tmp_path, settings):
    (tmp_path / "nexus_sse").mkdir()
    (tmp_path / "nexus_sse" / "chat.html").write_text(
        '{% extends "nexus_sse/chat.html" %}{% block title %}Ask Acme{% endblock %}'
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=templates):
        html = client.get("/chat/").content.decode()
    assert "<title>Ask Acme</title>" in html and data_attributes(html)["execute-url"]
