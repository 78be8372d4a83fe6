"""How a pull node reads its store (funops.node.poll.fetch, urllib): against small servers on loopback,
the size caps hold whether or not the server says the length, and a redirect is followed only within
the store's scheme and host — an https store never hands the node to plain http."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from funops.node.poll import PullConfig, StoreRefused, fetch

BODY = b'{"index": "small"}'


class Handler(BaseHTTPRequestHandler):
    """/ok: BODY; /big: 64 bytes with its length; /endless: 64 bytes, no length (read until close);
    /to/<url>: a 302 to <url> (a path: on this server)."""

    def do_GET(self) -> None:
        if self.path == "/ok":
            self._send(BODY, length=True)
        elif self.path in ("/big", "/endless"):
            self._send(b"x" * 64, length=self.path == "/big")
        elif self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path.removeprefix("/to/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)

    def _send(self, body: bytes, length: bool) -> None:
        self.send_response(200)
        if length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _start(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    yield from _start(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[ThreadingHTTPServer, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    cert, key = tmp_path / "store.crt", tmp_path / "store.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for started in _start(server):
        yield started, cert


def _config(url: str, ca_file: Path | None = None) -> PullConfig:
    return PullConfig(node="n1", store=url, ca_file=str(ca_file) if ca_file else None, timeout=10)


def test_a_body_over_the_limit_is_refused_with_or_without_its_length(
    http_server: ThreadingHTTPServer,
) -> None:
    config = _config(f"http://127.0.0.1:{http_server.server_port}")
    got = fetch(config, "ok", None, 64)
    assert got is not None and got[0] == BODY
    with pytest.raises(StoreRefused, match="64 bytes, and a node reads at most 32 bytes"):
        fetch(config, "big", None, 32)  # Content-Length says so: refused before reading
    with pytest.raises(StoreRefused, match="more than 32 bytes, and a node reads at most 32"):
        fetch(config, "endless", None, 32)  # no length: refused once the cap is passed
    assert fetch(config, "endless", None, 64) is not None  # at the cap: read


def test_a_redirect_is_followed_only_on_the_stores_scheme_and_host(http_server: ThreadingHTTPServer) -> None:
    port = http_server.server_port
    config = _config(f"http://127.0.0.1:{port}")
    got = fetch(config, "to//ok", None, 1024)  # on the store itself: followed
    assert got is not None and got[0] == BODY
    with pytest.raises(StoreRefused, match=r"redirects to http://127\.0\.0\.2:.*off the store's http://127"):
        fetch(config, f"to/http://127.0.0.2:{port}/ok", None, 1024)  # another host
    with pytest.raises(StoreRefused, match="redirects to http://localhost"):
        fetch(config, f"to/http://localhost:{port}/ok", None, 1024)  # the same server by another name


def test_an_https_store_never_redirects_the_node_to_http(
    https_server: tuple[ThreadingHTTPServer, Path], http_server: ThreadingHTTPServer
) -> None:
    server, cert = https_server
    config = _config(f"https://127.0.0.1:{server.server_port}", cert)
    got = fetch(config, "ok", None, 1024)  # the store over https, its CA given
    assert got is not None and got[0] == BODY
    got = fetch(config, "to//ok", None, 1024)
    assert got is not None and got[0] == BODY
    plain = f"http://127.0.0.1:{http_server.server_port}/ok"  # what the redirect would read: served
    with pytest.raises(StoreRefused, match=f"redirects to {plain}, off the store's https://127.0.0.1"):
        fetch(config, f"to/{plain}", None, 1024)
    same_port = f"http://127.0.0.1:{server.server_port}/ok"  # the same host and port, down to http
    with pytest.raises(StoreRefused, match="off the store's https://"):
        fetch(config, f"to/{same_port}", None, 1024)
