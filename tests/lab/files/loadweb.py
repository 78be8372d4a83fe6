"""The load tests' systemd backend: GET / /health /slow (1-2 s), POST /echo. HTTP/1.0 like the
example's http.server; argv: bind port version [seconds after which /health fails]."""

import random
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/health" and len(sys.argv) > 4 and time.monotonic() - STARTED > float(sys.argv[4]):
            self._send(b"unhealthy", 500)
            return
        if self.path.startswith("/slow"):
            time.sleep(1 + random.random())
        self._send(f"web {sys.argv[3]} {self.path}".encode())

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(b"echo " + data)

    def log_message(self, *args: object) -> None:
        pass


STARTED = time.monotonic()
ThreadingHTTPServer.daemon_threads = True
# socketserver listens with a backlog of 5: while one instance is drained, a burst fills the others'
# accept queues, the kernel drops the next SYN and nginx's connect waits for its retransmission, 1 s
# later (bench/README.md, "Rolling restarts under load"): servers for traffic listen with more.
ThreadingHTTPServer.request_queue_size = 128
ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
