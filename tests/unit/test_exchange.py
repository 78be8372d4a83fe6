"""The agent transport's request/answer reader (transports/exchange.py) on a real socket pair: the
answers an HTTP server sends, and http.client's exceptions for what is cut short or not HTTP (the
agent transport's error handling is written against those). Against a real agent: test_agent.py."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from funops.transports.exchange import Answer, exchange, read_answer


def _answer(raw: bytes, close: bool = True) -> Answer:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(raw)
        if close:
            theirs.shutdown(socket.SHUT_WR)
        return read_answer(ours)


def test_a_content_length_answer() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Funops-Agent: 0.1.0\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    answer = _answer(raw, close=False)
    assert (answer.status, answer.body, answer.will_close) == (200, b"{}", False)
    assert answer.getheader("x-funops-agent") == "0.1.0" and answer.getheader("Connection") == ""


def test_close_chunked_and_unsized_answers() -> None:
    closing = _answer(b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc")
    assert (closing.status, closing.body, closing.will_close) == (401, b"abc", True)
    chunked = _answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"
    )
    assert chunked.body == b"abcde" and chunked.will_close
    unsized = _answer(b"HTTP/1.0 404 Not Found\r\n\r\nno such")
    assert (unsized.status, unsized.body, unsized.will_close) == (404, b"no such", True)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"", http.client.RemoteDisconnected),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", http.client.IncompleteRead),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000, http.client.LineTooLong),
    ],
)
def test_what_is_cut_short_or_not_http_raises_http_clients_exceptions(raw: bytes, error: type) -> None:
    with pytest.raises(error):
        _answer(raw)


def test_the_request_as_a_server_reads_it() -> None:
    ours, theirs = socket.socketpair()
    got: list[bytes] = []

    def serve() -> None:
        data = b""
        while b"{}" not in data:
            data += theirs.recv(4096)
        got.append(data)
        theirs.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{"a"')

    thread = threading.Thread(target=serve)
    thread.start()
    with ours, theirs:
        answer = exchange(ours, "127.0.0.1:7391", "/v1/gather", b"{}", {"Authorization": "Bearer t"})
    thread.join()
    head, _, body = got[0].partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"POST /v1/gather HTTP/1.1",
        b"Host: 127.0.0.1:7391",
        b"Accept-Encoding: identity",
        b"Authorization: Bearer t",
        b"Content-Length: 2",
    ]
    assert body == b"{}" and answer.body == b'{"a"'
