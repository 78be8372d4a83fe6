"""One HTTP/1.1 request and its answer over a connected socket, for the agent transport's kept-alive
connection: what `http.client` does for a request, without its per-answer file object and the `email`
package's header parser (together ~0.2 ms of a gather's CPU per node: 0.4 s at 2,000 nodes).

The agent answers a request with a status line, headers and a Content-Length body (node/server.py);
a chunked body or one ended by the close of the connection is read too. Failures are `http.client`'s
own exceptions, as its callers already handle them: `RemoteDisconnected` when the connection closed
before any answer, `IncompleteRead` for a body cut short, `BadStatusLine`/`LineTooLong` for what is
not HTTP; socket errors and timeouts go through as they are.
"""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass

MAX_HEAD = 65536  # status line and headers together (http.client: 64 KiB a line, 100 headers)
READ = 65536


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    will_close: bool  # the agent closes the connection after this answer

    def getheader(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def authority(host: str, port: int) -> str:
    """`host:port` as a Host header (and a scrape target) writes it: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The request's bytes: `POST path`, then Host, the caller's headers, Content-Length and the body."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(sock: socket.socket, host: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
    sock.sendall(request(host, path, body, headers))
    return read_answer(sock)


def read_answer(sock: socket.socket) -> Answer:
    buf = bytearray()
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buf) > MAX_HEAD:
            raise http.client.LineTooLong("header block")
        chunk = sock.recv(READ)
        if not chunk:
            if not buf:
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            raise http.client.BadStatusLine(bytes(buf[:200]).decode("latin-1"))
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    rest = buf[end + 4 :]
    version, status = _status(head[0])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise http.client.BadStatusLine(line)
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    will_close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, will_close = _chunked(sock, rest), True  # what follows the last chunk is not read
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise http.client.BadStatusLine(f"Content-Length: {headers['content-length']}") from None
        body = _exactly(sock, rest, length)
    else:  # ended by the close of the connection
        while chunk := sock.recv(READ):
            rest += chunk
        body, will_close = bytes(rest), True
    return Answer(status, headers, body, will_close)


def _status(line: str) -> tuple[str, int]:
    version, _, tail = line.partition(" ")
    code = tail[:3]
    if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit() or int(code) < 100:
        raise http.client.BadStatusLine(line)
    return version, int(code)


def _exactly(sock: socket.socket, have: bytearray, length: int) -> bytes:
    while len(have) < length:
        chunk = sock.recv(max(READ, length - len(have)))
        if not chunk:
            raise http.client.IncompleteRead(bytes(have), length - len(have))
        have += chunk
    return bytes(have[:length])


def _chunked(sock: socket.socket, have: bytearray) -> bytes:
    out = bytearray()
    while True:
        while (eol := have.find(b"\r\n")) < 0:
            if len(have) > MAX_HEAD:
                raise http.client.LineTooLong("chunk size")
            chunk = sock.recv(READ)
            if not chunk:
                raise http.client.IncompleteRead(bytes(out))
            have += chunk
        try:
            size = int(bytes(have[:eol]).split(b";", 1)[0], 16)
        except ValueError:
            raise http.client.IncompleteRead(bytes(out)) from None
        del have[: eol + 2]
        if size == 0:
            return bytes(out)  # trailers, if any, are not read: the agent sends none
        data = _exactly(sock, have, size + 2)
        out += data[:size]
        del have[: size + 2]
