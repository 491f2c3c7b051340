"""The chat page in a real browser (Playwright + Debian Chromium) against a real server."""

import re

import pytest
from playwright.sync_api import expect

from nexus_sse.llm.offline import OfflineProvider
from nexus_sse.models import Run
from tests import factories
from tests.browser import OUTPUT
from tests.fake_openai import FakeOpenAI
from tests.live import ServerProcess
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)  # generous: two cores shared with other test runs

OVERRIDES = {
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.06}},
    "RETRY_MILLISECONDS": 200,
    "ORPHAN_SECONDS": 30.0,
    "WORKFLOW_CACHE_SECONDS": 0.0,
    "MAX_BODY_BYTES": 16384,
}
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
def fake_llm_server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(django_db_setup, fake_llm_server):
    providers = {
        **OVERRIDES["LLM_PROVIDERS"],
        "fake": {
            "BACKEND": "openai",
            "BASE_URL": fake_llm_server.base_url,
            "API_KEY": "sk-secret",
            "MAX_RETRIES": 0,
        },
    }
    overrides = {**OVERRIDES, "LLM_PROVIDERS": providers}
    with ServerProcess("uvicorn", overrides=overrides, app="tests.asgi_static:application") as proc:
        yield proc


@pytest.fixture
def chat_url(server, workflows):
    return f"{server.url}/chat/"


def expected_reply(message, turn=1):
    history = [{"role": "user", "content": "x"}] * (turn - 1) + [{"role": "user", "content": message}]
    return "".join(OfflineProvider("offline").reply(history, None))


def expected_tokens(message):
    """The offline provider's usage count for a first message to the demo `chat` workflow."""
    system = "You are a helpful AI assistant."  # project/workflows.py
    reply = OfflineProvider("offline").reply([{"role": "user", "content": message}], None)
    return len(system.split()) + len(message.split()) + len(reply)


def send(page, text):
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")


def last_reply(page):
    return page.locator(".message.assistant .bubble").last


# Read the reply and the agent's step in one go (one JS turn), so they describe the same moment.
SNAPSHOT = """() => {
  const bubbles = document.querySelectorAll('.message.assistant .bubble');
  const step = document.querySelector('#chat-nodes li[data-node="chat_agent"]');
  return [bubbles[bubbles.length - 1].textContent, step ? step.dataset.status : null];
}"""


def test_a_reply_streams_in_token_by_token_with_its_progress_and_completes(page, chat_url):
    page.goto(chat_url)
    expect(page.locator("#chat-demo")).to_be_visible()  # the offline provider is named as a demo
    send(page, "Tell me about rivers")
    reply = last_reply(page)
    expect(reply).to_contain_text("You said")  # some text is visible...
    partial, step = page.evaluate(SNAPSHOT)
    full = expected_reply("Tell me about rivers")
    assert 0 < len(partial) < len(full) and full.startswith(partial)  # ...while the reply is still streaming
    assert step == "started"  # the node's progress is shown as it runs
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert reply.text_content() == full
    expect(page.locator('#chat-nodes li[data-node="chat_agent"]')).to_have_text("chat_agent completed")
    expect(page.locator(".message.assistant .meta").last).to_have_text(
        f"offline demo provider · {expected_tokens('Tell me about rivers')} tokens"
    )
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
    step = page.locator('#chat-nodes li[data-node="chat_agent"]')
    expect(step).to_have_text("chat_agent started")
    page.click("#chat-stop")
    expect(page.locator("#chat-status")).to_have_text("Stopped")
    expect(reply.locator(".note")).to_have_text("Stopped.")
    expect(step).to_have_text("chat_agent stopped")  # not left at "started"
    full = expected_reply("Please write a long answer")
    text = reply.text_content().removesuffix("Stopped.")
    assert full.startswith(text) and len(text) < len(full)
    assert Run.objects.get(workflow__slug="chat").status == "cancelled"
    expect(page.locator("#chat-input")).to_be_enabled()


def test_a_dropped_connection_resumes_and_the_reply_completes_exactly_once(page, server, workflows):
    resumes = []
    page.on(
        "request", lambda r: resumes.append(r.headers.get("last-event-id")) if "/events" in r.url else None
    )
    with TcpProxy(server.port) as proxy:
        page.goto(f"{proxy.url}/chat/")
        send(page, "Cut me off halfway")
        reply = last_reply(page)
        expect(reply).to_contain_text("You said")
        proxy.cut()  # the page's stream dies mid-reply
        expect(page.locator("#chat-status")).to_have_text("Done")
        assert reply.text_content() == expected_reply("Cut me off halfway")
        assert proxy.cuts == 1
    run = Run.objects.get(workflow__slug="chat")  # resumed, not re-run
    assert resumes and re.fullmatch(rf"{run.pk}:\d+", resumes[0]) and int(resumes[0].split(":")[1]) > 1
    assert page.js_errors == []


def test_an_unreachable_server_shows_a_message_and_the_page_keeps_working(page, server, workflows):
    with TcpProxy(server.port) as proxy:
        page.goto(f"{proxy.url}/chat/")
    # the proxy is gone: nothing listens on the page's origin any more
    send(page, "anyone there?")
    expect(page.locator("#chat-status")).to_have_text("Could not reach the server")
    expect(last_reply(page)).to_contain_text("Could not reach the server.")
    expect(page.locator("#chat-input")).to_be_enabled()
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


def test_the_page_works_under_a_strict_content_security_policy(page, chat_url):
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "(window.__csp = window.__csp || []).push(e.violatedDirective))"
    )
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)

    def with_csp(route):
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-security-policy": STRICT_CSP})

    page.route(re.compile(r".*/chat/$"), with_csp)
    page.goto(chat_url)
    send(page, "under CSP")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert last_reply(page).text_content() == expected_reply("under CSP")
    assert page.evaluate("window.__csp") is None and refused == []


def test_a_rate_limited_message_shows_why(page, chat_url):
    factories.set_policy("chat", rate_limit="1/min")
    page.goto(chat_url)
    send(page, "first")
    expect(page.locator("#chat-status")).to_have_text("Done")
    send(page, "second")
    expect(last_reply(page)).to_contain_text("Too many requests")
    assert re.search(r"retry in \d+ s", last_reply(page).text_content())
    expect(page.locator("#chat-input")).to_be_enabled()


def test_http_errors_show_a_clear_message(page, chat_url):
    page.goto(chat_url)
    send(page, "x" * 20_000)  # over MAX_BODY_BYTES
    expect(last_reply(page)).to_have_text(
        re.compile(r"^The request was not accepted: request body exceeds 16384 bytes$")
    )
    factories.set_policy("chat", access="authenticated")  # changed after the page was loaded
    send(page, "hello")
    expect(last_reply(page)).to_have_text(re.compile(r"^Please log in to use this chat: "))
    expect(page.locator("#chat-status")).to_have_class(re.compile("error"))
    assert page.js_errors == []


def test_a_logged_in_user_chats_through_the_csrf_check(page, server, workflows):
    factories.set_policy("chat", access="authenticated")
    cookies = factories.session_cookies(factories.user("ann"))
    page.context.add_cookies([{"name": k, "value": v, "url": server.url} for k, v in cookies.items()])
    page.goto(f"{server.url}/chat/")
    send(page, "hello as ann")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert Run.objects.get(workflow__slug="chat").user.username == "ann"


def test_the_selector_switches_to_a_real_openai_compatible_provider(page, chat_url, fake_llm_server):
    page.goto(chat_url)
    send(page, "to the demo")
    expect(page.locator("#chat-status")).to_have_text("Done")
    page.select_option("#chat-workflow", "fake_llm")
    expect(page.locator("#chat-log .message")).to_have_count(0)  # a new conversation
    expect(page.locator("#chat-demo")).to_be_hidden()  # not the demo provider any more
    send(page, "hello model")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert last_reply(page).text_content() == "Echo: hello model"
    expect(page.locator(".message.assistant .meta").last).to_have_text(
        re.compile(r"^openai · fake · \d+ tokens$")
    )
    assert fake_llm_server.requests[-1]["body"]["messages"][-1] == {"role": "user", "content": "hello model"}
    assert Run.objects.filter(workflow__slug="fake_llm").count() == 1


def test_a_provider_error_shows_a_clear_message_without_secrets(page, server, workflows):
    page.goto(f"{server.url}/chat/fake_llm_broken/")
    send(page, "hello")
    expect(page.locator(".message.assistant.error")).to_contain_text(
        "The assistant failed: the model server refused the credentials"
    )
    expect(page.locator('#chat-nodes li[data-node="agent"]')).to_have_text("agent failed")
    assert "sk-" not in page.locator("main").inner_text()
    expect(page.locator("#chat-input")).to_be_enabled()


def test_the_page_fits_a_phone_and_works_by_keyboard(page, chat_url):
    page.set_viewport_size({"width": 375, "height": 667})
    page.goto(chat_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    expect(page.locator("#chat-input")).to_be_focused()
    page.keyboard.type("typed only")
    page.keyboard.press("Enter")
    expect(page.locator("#chat-status")).to_have_text("Done")
    assert "typed only" in last_reply(page).text_content()
    page.keyboard.type("now stop this one")  # focus is back in the message box
    page.keyboard.press("Enter")
    expect(last_reply(page)).to_contain_text("You said")
    page.keyboard.press("Escape")
    expect(page.locator("#chat-status")).to_have_text("Stopped")
    expect(page.locator('#chat-nodes li[data-node="chat_agent"]')).to_have_text("chat_agent stopped")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_the_page_works_under_a_url_prefix(page, django_db_setup, workflows):
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings_prefixed"}
    calls = []
    page.on("request", lambda r: calls.append(r.url))
    with ServerProcess(
        "uvicorn", overrides=OVERRIDES, env=env, app="tests.asgi_static:application"
    ) as prefixed:
        page.goto(f"{prefixed.url}/nexus/api/chat/")
        send(page, "from under a prefix")
        expect(page.locator("#chat-status")).to_have_text("Done")
    assert last_reply(page).text_content() == expected_reply("from under a prefix")
    assert f"{prefixed.url}/nexus/api/workflows/chat/execute" in calls
