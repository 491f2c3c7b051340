"""nexus_sse.sse_response in a site's own view (project/views.py countdown), in process, through
Django's handler and the demo site's middleware. That a server delivers a client's disconnect is in
tests/test_sse_response_helper.py, over a real socket."""

from project import views
from tests.inprocess import after_events, request, served_by_django


async def test_the_helper_streams_events_with_the_same_headers():
    response = await request("GET", "/demo/countdown?start=3&pace=0", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200 and served_by_django(response)
    assert response.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.header("Cache-Control") == "no-cache" and response.header("X-Accel-Buffering") == "no"
    assert response.header("Content-Encoding") is None  # GZipMiddleware leaves it alone
    assert response.body == (
        b"retry: 3000\n\n"
        + b"".join(f'id: {n}\nevent: tick\ndata: {{"remaining": {n}}}\n\n'.encode() for n in (3, 2, 1, 0))
        + b'event: done\ndata: {"remaining": 0}\n\n'
    )
    assert response.complete


async def test_the_helper_sends_keepalives_while_the_source_is_silent():
    response = await request("GET", "/demo/countdown?start=1&pace=0.6&keepalive=0.1")
    lines = response.text.splitlines()
    assert lines.count(":keepalive") >= 3
    assert lines.index(":keepalive") > lines.index("event: tick")


async def test_a_client_that_leaves_ends_the_generator_before_the_response_returns():
    before = views.finished_streams
    response = await request("GET", "/demo/countdown?start=50&pace=30", stop=after_events(1))
    # the generator was waiting 30 s for its next tick: Django's handler cancelled it on the disconnect
    assert [e.json() for e in response.events()] == [{"remaining": 50}]
    assert not response.complete
    assert views.finished_streams == before + 1
