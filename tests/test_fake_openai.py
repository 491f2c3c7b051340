"""The fake OpenAI server (tests/fake_openai.py) stays quiet when a client hangs up on it."""

import json
import logging
import socket
import struct

from tests.fake_openai import FakeOpenAI


def test_a_client_that_resets_a_kept_alive_connection_prints_no_traceback(capfd, caplog):
    body = json.dumps({"model": "fake", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    request = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    with FakeOpenAI() as fake, caplog.at_level(logging.DEBUG, logger="tests.fake_openai"):
        with socket.create_connection(fake.server.server_address, timeout=5) as client:
            client.sendall(request)
            received = b""
            while not received.endswith(b"0\r\n\r\n"):  # the whole reply: the server waits for the next
                received += client.recv(65536)
            # close with a reset (linger 0), as a client does that drops a connection with data unread
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert fake.server.hung_up.wait(5)
    assert b"data: [DONE]" in received
    assert capfd.readouterr().err == ""
    assert caplog.records == []
