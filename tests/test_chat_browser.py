"""The chat page in a real browser (Playwright + Debian Chromium) against a real server."""

import re

import pytest
from playwright.sync_api import expect

from nexus_sse.llm.offline import OfflineProvider
from nexus_sse.models import Run
from tests import factories
from tests.browser import OUTPUT
from tests.live import ServerProcess
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.browser

OVERRIDES = {
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.06}},
    "RETRY_MILLISECONDS": 200,
    "ORPHAN_SECONDS": 30.0,
    "WORKFLOW_CACHE_SECONDS": 0.0,
}


@pytest.fixture(scope="module")
def server(django_db_setup):
    with ServerProcess("uvicorn", overrides=OVERRIDES, app="tests.asgi_static:application") as proc:
        yield proc


@pytest.fixture
def chat_url(server, workflows):
    return f"{server.url}/chat/"


def expected_reply(message, turn=1):
    history = [{"role": "user", "content": "x"}] * (turn - 1) + [{"role": "user", "content": message}]
    return "".join(OfflineProvider("offline").reply(history, None))


def send(page, text):
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")


def last_reply(page):
    return page.locator(".message.assistant .bubble").last


def test_a_reply_streams_in_token_by_token_and_completes(page, chat_url):
    page.goto(chat_url)
    expect(page.locator("#chat-demo")).to_be_visible()  # the offline provider is named as a demo
    send(page, "Tell me about rivers")
    reply = last_reply(page)
    expect(reply).to_contain_text("You said")  # some text is visible...
    assert page.locator("#chat-stop").is_enabled()  # ...while the reply is still streaming
    partial = reply.text_content()
    full = expected_reply("Tell me about rivers")
    assert 0 < len(partial) < len(full)
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert reply.text_content() == full
    send(page, "And lakes?")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert last_reply(page).text_content() == expected_reply("And lakes?", turn=2)  # history was sent
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "chat.png"))
    assert page.js_errors == []


def test_stop_cancels_the_run_on_the_server(page, chat_url):
    page.goto(chat_url)
    send(page, "Please write a long answer")
    reply = last_reply(page)
    expect(reply).to_contain_text("You said")
    page.click("#chat-stop")
    expect(page.locator("#chat-status")).to_have_text("Stopped")
    expect(reply.locator(".note")).to_have_text("Stopped.")
    full = expected_reply("Please write a long answer")
    text = reply.text_content().removesuffix("Stopped.")
    assert full.startswith(text) and len(text) < len(full)
    assert Run.objects.get(workflow__slug="chat").status == "cancelled"
    expect(page.locator("#chat-input")).to_be_enabled()


def test_a_dropped_connection_resumes_and_the_reply_completes_exactly_once(page, server, workflows):
    with TcpProxy(server.port) as proxy:
        page.goto(f"{proxy.url}/chat/")
        send(page, "Cut me off halfway")
        reply = last_reply(page)
        expect(reply).to_contain_text("You said")
        proxy.cut()  # the page's stream dies mid-reply
        expect(page.locator("#chat-status")).to_have_text("Done", timeout=15000)
        assert reply.text_content() == expected_reply("Cut me off halfway")
        assert proxy.cuts == 1
    assert Run.objects.filter(workflow__slug="chat").count() == 1  # resumed, not re-run
    assert page.js_errors == []


def test_html_in_messages_is_shown_as_text_and_never_run(page, chat_url):
    page.goto(chat_url)
    attack = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    send(page, attack)
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert page.locator(".message.user .bubble").last.text_content() == attack
    assert attack in last_reply(page).text_content()
    assert page.locator("#chat-log img, #chat-log script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_a_rate_limited_message_shows_why(page, chat_url):
    factories.set_policy("chat", rate_limit="1/min")
    page.goto(chat_url)
    send(page, "first")
    expect(page.locator("#chat-status")).to_have_text("Done")
    send(page, "second")
    expect(last_reply(page)).to_contain_text("Too many requests")
    assert re.search(r"retry in \d+ s", last_reply(page).text_content())
    expect(page.locator("#chat-input")).to_be_enabled()


def test_a_logged_in_user_chats_through_the_csrf_check(page, server, workflows):
    factories.set_policy("chat", access="authenticated")
    cookies = factories.session_cookies(factories.user("ann"))
    page.context.add_cookies([{"name": k, "value": v, "url": server.url} for k, v in cookies.items()])
    page.goto(f"{server.url}/chat/")
    send(page, "hello as ann")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert Run.objects.get(workflow__slug="chat").user.username == "ann"


def test_the_page_fits_a_phone_and_works_by_keyboard(page, chat_url):
    page.set_viewport_size({"width": 375, "height": 667})
    page.goto(chat_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.locator("#chat-input")).to_be_focused()
    page.keyboard.type("typed only")
    page.keyboard.press("Enter")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert "typed only" in last_reply(page).text_content()
