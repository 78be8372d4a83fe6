"""A bounded load client for the lab's tests and benches: threads sending requests through an
ingress while funops changes the fleet, counting what a user would see as a failure.

Kinds of client (one thread each, round robin over `threads`): `keepalive` GETs on one reused
connection, `fresh` GETs on a new connection each, `post` POSTs (always on a new connection: a POST
is never retried), `slow` GETs that take 1-2 s on a reused connection.

The failure rule: any 5xx, a reset or a close in the middle of a response, a refused connection, a
timeout. The one allowed retry: an idempotent request on a *reused* keep-alive connection that the
server closed before any byte of the response (RFC 9112 §9.3.1; nginx closes idle keep-alive
connections when it reloads) is sent once more on a new connection, as browsers do.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

KINDS = ("keepalive", "fresh", "post", "slow")


@dataclass
class Target:
    address: str  # the ingress node's address (127.0.<slot>.k)
    host: str  # the Host header / SNI name
    port: int = 443
    tls: bool = True
    get: tuple[str, ...] = ("/", "/api/")
    post: tuple[str, ...] = ("/echo", "/api/echo")
    slow: tuple[str, ...] = ("/slow", "/api/slow")


@dataclass
class Report:
    served: int = 0
    retried: int = 0
    worst: float = 0.0
    failures: list[str] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    # every request as (monotonic start, seconds it took, kind, ok): for percentiles and for when
    samples: list[tuple[float, float, str, bool]] = field(default_factory=list)

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.by_kind.items()))
        return (
            f"served {self.served} requests ({kinds}), failed {len(self.failures)}, "
            f"retried {self.retried} on closed keep-alive connections, worst latency {self.worst:.2f}s"
        )


def _unverified() -> ssl.SSLContext:
    """The example's certificate is self-signed: nothing to verify, so no CA store is loaded either
    (`ssl.create_default_context()` parses the system's CAs, ≈ 15-50 ms of CPU holding the GIL: per
    new connection, that was the clients' own worst latency)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Tls(http.client.HTTPSConnection):
    """HTTPS to an address, with the site's name as SNI, on one context shared by every connection."""

    CONTEXT = _unverified()

    def __init__(self, address: str, port: int, name: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout, context=self.CONTEXT)
        self.name = name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.name)  # type: ignore[attr-defined]


class _Client:
    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self.used = False  # the connection already carried a response

    def _new(self) -> http.client.HTTPConnection:
        t = self.target
        if t.tls:
            return _Tls(t.address, t.port, t.host, self.timeout)
        return http.client.HTTPConnection(t.address, t.port, timeout=self.timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.used = None, False

    def request(self, method: str, path: str, body: bytes | None, keep: bool) -> tuple[int, bytes, bool]:
        """(status, body, retried). Raises on a failure."""
        if not keep:
            self.close()
        if self.conn is None:
            self.conn, self.used = self._new(), False
        reused = self.used
        headers = {"Host": self.target.host}
        if not keep:
            headers["Connection"] = "close"
        try:
            return (*self._once(method, path, body, headers), False)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            nothing_read = isinstance(exc, http.client.RemoteDisconnected) or not getattr(
                self, "_got_status", False
            )
            self.close()
            if not (reused and method == "GET" and nothing_read):
                raise
            self.conn = self._new()
            return (*self._once(method, path, body, headers), True)

    def _once(self, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
        assert self.conn is not None
        self._got_status = False
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        self._got_status = True
        data = resp.read()
        self.used = True
        if resp.will_close:
            self.close()
        return resp.status, data


class Load:
    """`with Load(target).running() as report:` — clients run until the block ends (or the bounds)."""

    def __init__(
        self,
        target: Target,
        threads: int = 8,
        max_seconds: float = 300,
        max_requests: int = 200_000,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.target = target
        self.threads = threads
        self.kinds = kinds
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.report = Report()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[Report]:
        workers = [
            threading.Thread(target=self._work, args=(self.kinds[i % len(self.kinds)], i), daemon=True)
            for i in range(self.threads)
        ]
        deadline = time.monotonic() + self.max_seconds
        self._deadline = deadline
        for w in workers:
            w.start()
        try:
            yield self.report
        finally:
            self._stop.set()
            for w in workers:
                w.join(timeout=30)

    def _work(self, kind: str, index: int) -> None:
        client = _Client(self.target, timeout=15)
        t = self.target
        n = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                if self.report.served + len(self.report.failures) >= self.max_requests:
                    return
            n += 1
            if kind == "post":
                method, path, body, keep = "POST", t.post[n % len(t.post)], f"n={index}.{n}".encode(), False
            elif kind == "slow":
                method, path, body, keep = "GET", t.slow[n % len(t.slow)], None, True
            else:
                method, path, body, keep = "GET", t.get[n % len(t.get)], None, kind == "keepalive"
            started = time.monotonic()
            try:
                status, data, retried = client.request(method, path, body, keep)
                error = f"{status} {data[:80]!r}" if status >= 500 else None
                if method == "POST" and status == 200 and body not in data:
                    error = f"POST echoed {data[:80]!r}"
            except (OSError, http.client.HTTPException) as exc:
                client.close()
                status, retried, error = 0, False, f"{type(exc).__name__}: {exc}"
            took = time.monotonic() - started
            with self._lock:
                r = self.report
                r.worst = max(r.worst, took)
                r.samples.append((started, took, kind, not error))
                r.retried += retried
                if error:
                    r.failures.append(f"{time.strftime('%H:%M:%S')} {kind} {method} {path}: {error}")
                else:
                    r.served += 1
                    r.by_kind[kind] = r.by_kind.get(kind, 0) + 1
