"""Security policies over a real socket: access per workflow, run ownership, CSRF, CORS, rate limits,
signed stream tokens, open-stream caps."""

import time

import httpx
import pytest
from django.core import signing

from tests import factories
from tests.live import ServerProcess
from tests.sse_helpers import take

# policies change between requests here: no workflow cache
OVERRIDES = {"MAX_STREAMS_PER_USER": 2, "ORPHAN_SECONDS": 30.0, "WORKFLOW_CACHE_SECONDS": 0.0}


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(request, django_db_setup):
    with ServerProcess(request.param, overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture
def url(server, workflows):
    return server.url


def post_greet(client, **kwargs):
    return client.post("/workflows/greet/execute", json={"inputs": {"name": "x"}}, **kwargs)


def test_authenticated_policy_needs_a_user(url):
    factories.set_policy("greet", access="authenticated")
    ann = factories.user("ann")
    with httpx.Client(base_url=url, timeout=10) as client:
        anonymous = post_greet(client)
        assert anonymous.status_code == 401 and anonymous.json()["error_type"] == "AuthenticationError"
        assert client.get("/workflows/greet/execute?name=x").status_code == 401  # EventSource too
        assert post_greet(client, headers=factories.token(ann)).status_code == 200
        bad = post_greet(client, headers={"Authorization": "Token nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid token"


def test_permission_policy_needs_the_named_permission(url):
    factories.set_policy("greet", access="permission", permission="nexus_sse.view_run")
    without = factories.token(factories.user("bob"))
    allowed = factories.token(factories.user("eve", perms=("nexus_sse.view_run",)))
    with httpx.Client(base_url=url, timeout=10) as client:
        denied = post_greet(client, headers=without)
        assert denied.status_code == 403 and denied.json()["error_type"] == "PermissionDenied"
        assert post_greet(client, headers=allowed).json()["result"] == {"result": "Hello, x!"}


def test_a_users_runs_are_invisible_to_other_users(url):
    ann, bob, staff = factories.user("ann"), factories.user("bob"), factories.user("root", staff=True)
    with httpx.Client(base_url=url, timeout=10) as client:
        run_id = post_greet(client, headers=factories.token(ann)).json()["run_id"]
        for path in (f"/runs/{run_id}", f"/runs/{run_id}/events"):
            assert client.get(path, headers=factories.token(ann)).status_code == 200
            assert client.get(path).status_code == 404
            assert client.get(path, headers=factories.token(bob)).status_code == 404
            assert client.get(path, headers=factories.token(staff)).status_code == 200
        assert client.post(f"/runs/{run_id}/cancel", headers=factories.token(bob)).status_code == 404


def test_csrf_is_required_for_session_posts_only(url):
    ann = factories.user("ann")
    cookies = factories.session_cookies(ann)
    with factories.cookie_client(url, cookies) as browser:
        rejected = post_greet(browser)
        assert rejected.status_code == 403 and "CSRF" in rejected.json()["error"]
        accepted = post_greet(browser, headers={"X-CSRFToken": cookies["csrftoken"]})
        assert accepted.status_code == 200
    with httpx.Client(base_url=url, timeout=10) as program:
        assert post_greet(program, headers=factories.token(ann)).status_code == 200  # no CSRF for tokens


def test_cors_preflight_answers_allowed_origins_only(url):
    request = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,last-event-id",
    }
    with httpx.Client(base_url=url, timeout=10) as client:
        allowed = client.options(
            "/workflows/chat/execute", headers={"Origin": "https://allowed.example", **request}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://allowed.example"
        assert "last-event-id" in allowed.headers["access-control-allow-headers"]
        other = client.options(
            "/workflows/chat/execute", headers={"Origin": "https://evil.example", **request}
        )
        assert "access-control-allow-origin" not in other.headers
        stream = client.post(
            "/workflows/greet/execute",
            json={"inputs": {"name": "x"}},
            headers={"Origin": "https://allowed.example"},
        )
        assert stream.headers["access-control-allow-origin"] == "https://allowed.example"


def test_rate_limited_runs_get_429_with_retry_after(url):
    factories.set_policy("greet", rate_limit="2/min")
    with httpx.Client(base_url=url, timeout=10) as client:
        assert [post_greet(client).status_code for _ in range(2)] == [200, 200]
        limited = post_greet(client)
        assert limited.status_code == 429 and limited.json()["error_type"] == "RateLimitError"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/workflows/greet/execute?name=x").status_code == 429  # the stream too
        assert (
            post_greet(client, headers=factories.token(factories.user("ann"))).status_code == 200
        )  # per user


def test_stream_tokens_open_their_workflow_only_and_not_when_tampered(url):
    factories.set_policy("greet", access="authenticated")
    factories.set_policy("chat", access="authenticated")
    ann = factories.user("ann")
    with httpx.Client(base_url=url, timeout=10) as client:
        issued = client.post(
            "/api/stream-tokens/", json={"workflow": "greet"}, headers=factories.token(ann)
        ).json()
        events = take(client, "GET", f"{issued['url']}&name=x")
        assert events[-1].event == "complete"
        from nexus_sse.models import Run

        assert str(Run.objects.get(pk=events[0].json()["run_id"]).user_id) == str(ann.pk)
        other = client.get(f"/workflows/chat/execute?stream_token={issued['token']}&message=hi")
        assert other.status_code == 403
        tampered = client.get(f"/workflows/greet/execute?stream_token={issued['token'][:-2]}xx&name=x")
        assert tampered.status_code == 401 and tampered.json()["error"] == "invalid stream token"


def test_expired_stream_tokens_are_refused(url):
    from nexus_sse import stream_tokens

    ann = factories.user("ann")
    token = signing.dumps({"u": ann.pk, "w": "greet"}, salt=stream_tokens.SALT, compress=True)
    payload = token.rsplit(":", 2)[0]
    expired = _sign_at(payload, signing.b62_encode(int(time.time()) - 600))  # 10 min ago; lifetime is 5
    with httpx.Client(base_url=url, timeout=10) as client:
        now = _sign_at(payload, signing.b62_encode(int(time.time())))
        fresh = client.get(f"/workflows/greet/execute?stream_token={now}&name=x")
        response = client.get(f"/workflows/greet/execute?stream_token={expired}&name=x")
    assert fresh.status_code == 200
    assert response.status_code == 401 and "expired" in response.json()["error"]


def _sign_at(payload: str, ts: str) -> str:
    """Sign ``payload`` with a chosen timestamp, as TimestampSigner would have then."""
    from nexus_sse import stream_tokens

    signer = signing.TimestampSigner(salt=stream_tokens.SALT)
    value = f"{payload}{signer.sep}{ts}"
    return f"{value}{signer.sep}{signer.signature(value)}"


def test_open_streams_per_user_are_capped(server, url):
    with httpx.Client(base_url=url, timeout=10) as client, httpx.Client(base_url=url, timeout=10) as other:
        from httpx_sse import connect_sse

        with connect_sse(client, "GET", "/workflows/slow/execute?seconds=30") as one:
            first = one.iter_sse()  # keep the iterators: dropping one closes its connection
            next(e for e in first if e.data)
            with connect_sse(other, "GET", "/workflows/slow/execute?seconds=30") as two:
                second = two.iter_sse()
                next(e for e in second if e.data)
                third = other.get("/workflows/greet/execute?name=x")
                assert third.status_code == 429 and "open streams" in third.json()["error"]
        # both closed: the slots came back
        from tests.sse_helpers import wait_for

        wait_for(lambda: other.get("/workflows/greet/execute?name=x").status_code == 200)


def test_a_forged_x_forwarded_for_does_not_reset_the_rate_limit(server, url):
    if server.kind == "uvicorn":
        pytest.skip(
            "uvicorn rewrites the client address from X-Forwarded-For for loopback peers itself "
            "(--forwarded-allow-ips); daphne passes the real peer, which is what this tests"
        )
    factories.set_policy("slow", rate_limit="1/min")  # a workflow no other test here throttles
    with httpx.Client(base_url=url, timeout=10) as client:

        def post(forwarded):
            return client.post(
                "/workflows/slow/execute",
                json={"inputs": {"seconds": 0}},
                headers={"X-Forwarded-For": forwarded},
            )

        assert post("10.0.0.1").status_code == 200
        second = post("10.0.0.2")
    assert second.status_code == 429


def test_stream_tokens_do_not_authenticate_posts(url):
    factories.set_policy("greet", access="authenticated")
    ann = factories.user("ann")
    with httpx.Client(base_url=url, timeout=10) as client:
        token = client.post(
            "/api/stream-tokens/", json={"workflow": "greet"}, headers=factories.token(ann)
        ).json()
        response = client.post(
            f"/workflows/greet/execute?stream_token={token['token']}", json={"inputs": {"name": "x"}}
        )
    assert response.status_code == 401


def test_basic_auth_of_a_staging_site_falls_back_to_the_session(url):
    # Basic credentials belong to a password-protected site in front of us, not to nexus_sse
    factories.set_policy("greet", access="authenticated")
    basic = {"Authorization": "Basic c3RhZ2luZzpzZWNyZXQ="}  # staging:secret
    cookies = factories.session_cookies(factories.user("ann"))
    with factories.cookie_client(url, cookies) as browser:
        stream = browser.get("/workflows/greet/execute?name=x", headers=basic)
        assert stream.status_code == 200 and "event: complete" in stream.text
        # the session authenticates the POST, so CSRF still applies
        assert post_greet(browser, headers=basic).status_code == 403
        assert post_greet(browser, headers={**basic, "X-CSRFToken": cookies["csrftoken"]}).status_code == 200
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        refused = anonymous.get("/workflows/greet/execute?name=x", headers=basic)
    assert refused.status_code == 401 and "needs an authenticated user" in refused.json()["error"]
