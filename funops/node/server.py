"""`funops agent serve`: HTTPS on the node's own address, typed tasks only, nothing unauthenticated but
whether it is alive.

Every request but three is a POST of JSON to /v1/<endpoint> with `Authorization: Bearer <token>` (its
sha256 is compared in constant time with the node's token file, read per request so a rotation needs no
restart) and `X-Funops-Protocol`. Endpoints: hello, gather (read tasks), tasks (a task id that is
an idempotency key with a timestamp: a repeat returns the stored result, a stale one is refused),
status, stream (an app's logs as they come, chunked: stream.py), tokens (admin: named tokens with
scopes, scopes.py). A slow client is dropped at a deadline; bodies are capped (413); workers are bounded.
GET /metrics is Prometheus's (metrics.py; any token, the `metrics` scope is enough); GET /v1/health and
/v1/ready answer `ok` or `not ok` to anyone, and nothing else (they go through the same pre-auth caps).
Each request is logged to the journal as one JSON line (_request_log): never a token, body or value.

No one can starve it: a connection holds no worker until it is authenticated. Its TLS handshake,
request line, headers and authentication are done in its own thread within PREAUTH_SECONDS of its
accept, or it is closed; an address has at most PER_ADDRESS connections open (more are closed at
once), and at most MAX_UNAUTHENTICATED connections wait to authenticate in all. A worker slot is taken
per authenticated request, not per connection: a kept-alive connection between requests holds none.

mTLS, optional: with `clientCa` in agent.json, a connection whose TLS client certificate verified
against that operator CA needs no token; a certificate from another CA fails the handshake.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..kinds import systemd_bus
from ..tasks import model as m
from ..tasks.results import CommandResult, TransportError
from . import AGENT_VERSION, PROTOCOL, TYPED_RESULTS, metrics, scopes, stream, wire
from . import CONFIG_FILE as PULL_CONFIG
from . import host as node
from .shell import bundle_text

TASK_WINDOW_SECONDS = 300  # a task id older (or newer) than this is refused: replays need a fresh id
# What a node in pull mode still runs for a controller: reads (plan, drift, nodes, logs, a bake's checks).
READ_ONLY = (m.Probe, m.ReadFiles, m.ProbeExtras, m.ReadLogs, m.CheckHealth)
PREAUTH_SECONDS = 5.0  # accept → TLS handshake, request line, headers and authentication, at most
PER_ADDRESS = 16  # connections open at once from one source address
MAX_UNAUTHENTICATED = 256  # connections not yet authenticated, from all addresses together


class PullMode(Exception):
    """A change pushed to a node in pull mode: refused (409), whoever holds the lock."""


@dataclass(frozen=True)
class Config:
    bind: str
    port: int
    cert: str
    key: str
    token_sha256_file: str
    client_ca: str = ""  # the operator CA's certificate: its client certificates authenticate (mTLS)
    state_dir: str = "/var/lib/funops"
    build: str = ""  # the installed code's version and digest (`agent install` writes it)
    workers: int = 8
    max_body: int = 64 << 20  # an upload (artifact) travels in the body
    request_seconds: float = 10  # from a request's first byte to its last
    idle_seconds: float = 60  # a kept-alive connection with no request
    pull_config: str = PULL_CONFIG  # there: the node is in pull mode (refuses pushes)
    tokens_file: str = ""  # named tokens with scopes (scopes.py); "": tokens.json beside the token's hash
    read_roots: tuple[str, ...] = ()  # what reads may return (scopes.readable); (): scopes' defaults
    preauth_seconds: float = PREAUTH_SECONDS
    per_address: int = PER_ADDRESS
    max_unauthenticated: int = MAX_UNAUTHENTICATED
    node: str = ""  # the node's name in the inventory (its metrics' `node` label); "": the host name

    @classmethod
    def load(cls, path: str) -> Config:
        """agent.json's camelCase keys (as `agent install` writes them) as these fields."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(**{re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in data.items()})

    @property
    def named_tokens(self) -> str:
        return self.tokens_file or scopes.tokens_file(self.token_sha256_file)

    @property
    def readable_roots(self) -> tuple[str, ...]:
        return (*(self.read_roots or scopes.DEFAULT_READ_ROOTS), self.state_dir)

    @property
    def never_read(self) -> tuple[str, ...]:
        """The agent's own key and tokens wherever they are, and what is never read on any host."""
        own = (self.key, self.token_sha256_file, self.named_tokens)
        return scopes.NEVER_READ + tuple(os.path.realpath(p) for p in own)


class _Deadline(io.RawIOBase):
    """The connection's reads, bounded: waiting for a request up to `idle`, then the whole request
    within `request` seconds however slowly its bytes come (a byte a second cannot hold a worker)."""

    def __init__(self, sock: socket.socket, idle: float, request: float) -> None:
        self.sock, self.idle, self.request = sock, idle, request
        self.deadline: float | None = None  # None: between requests

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self.sock.settimeout(self.idle)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request deadline passed")
            self.sock.settimeout(left)
        n = self.sock.recv_into(buffer)
        if n and self.deadline is None:
            self.deadline = time.monotonic() + self.request
        return n


class _Results:
    """Task results by task id: a repeat gets the stored result; one in flight is waited for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, dict[str, Any]]] = {}
        self._running: dict[str, threading.Event] = {}

    def run_once(self, task_id: str, work: Any) -> tuple[dict[str, Any], bool]:
        """(result, replayed)."""
        while True:
            with self._lock:
                if task_id in self._done:
                    return self._done[task_id][1], True
                event = self._running.get(task_id)
                if event is None:
                    self._running[task_id] = threading.Event()
                    break
            event.wait()
        try:
            result = work()
            with self._lock:
                now = time.time()
                self._done = {k: v for k, v in self._done.items() if now - v[0] < 2 * TASK_WINDOW_SECONDS}
                self._done[task_id] = (now, result)
            return result, False
        finally:
            with self._lock:
                self._running.pop(task_id).set()

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, config: Config, node_side: Any = node) -> None:
        self.config = config
        self.node = node_side  # what runs the tasks: this node (a simulated one in bench/fleet)
        self.results = _Results()
        self.capabilities = self.node.capabilities()
        self.slots = threading.BoundedSemaphore(config.workers)  # requests run at once (not connections)
        self._counting = threading.Lock()
        self._per_address: dict[str, int] = {}  # open connections by source address
        self._unauthenticated = 0
        self._admitted: dict[Any, tuple[float, dict[str, bool]]] = {}  # connection → (accepted, state)
        self.streams = stream.Slots(config.workers - 2)  # a stream holds a worker: leave some to plans
        self.metrics = metrics.Collector(config.node or socket.gethostname(), config.state_dir)
        self._logging = threading.Lock()
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(config.cert, config.key)
        if config.client_ca:
            # Optional, not required: a token alone still authenticates. Only this CA is trusted (no
            # system store): a presented certificate that does not verify fails the handshake.
            self.tls.load_verify_locations(cafile=config.client_ca)
            self.tls.verify_mode = ssl.CERT_OPTIONAL
        super().__init__((config.bind, config.port), Handler)

    def service_actions(self) -> None:
        """Between requests (serve_forever's loop, every half second at most): systemd connections
        left unused are closed, so what systemd sends them is not queued for the agent meanwhile."""
        systemd_bus.close_idle()

    def server_bind(self) -> None:
        # Not HTTPServer's: it looks its own address up (socket.getfqdn), a reverse DNS query that
        # hangs the start where the resolver does not answer and keeps the idna codec in memory.
        # Nothing here reads server_name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        """In the accept loop, which never waits: a connection over the caps is closed at once, any
        other gets a thread of its own (it takes a worker slot only once authenticated: Handler)."""
        address = client_address[0]
        with self._counting:
            over = (
                self._per_address.get(address, 0) >= self.config.per_address
                or self._unauthenticated >= self.config.max_unauthenticated
            )
            if not over:
                self._per_address[address] = self._per_address.get(address, 0) + 1
                self._unauthenticated += 1
        if over:
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(address, authenticated=False)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        accepted = time.monotonic()
        state = {"authenticated": False}  # Handler sets it (and counts the connection out of the caps)
        tls = None
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per request
            tls = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                _handshake(tls, accepted + self.config.preauth_seconds)
            except ssl.SSLError:
                _linger(tls, min(1.0, self.config.request_seconds))
                raise
            tls.settimeout(self.config.request_seconds)
            self._admitted[tls] = (accepted, state)
            super().process_request_thread(tls, client_address)
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
        finally:
            self._admitted.pop(tls, None)
            self._forget(client_address[0], state["authenticated"])

    def authenticated(self, connection: Any) -> None:
        """A connection's first request authenticated: it no longer counts as waiting to."""
        _, state = self._admitted.get(connection, (0.0, None))
        if state is not None and not state["authenticated"]:
            state["authenticated"] = True
            with self._counting:
                self._unauthenticated -= 1

    def preauth_deadline(self, connection: Any) -> float | None:
        """Until the connection authenticates: when its request must have been read and authenticated."""
        found = self._admitted.get(connection)
        if found is None or found[1]["authenticated"]:
            return None
        return found[0] + self.config.preauth_seconds

    def _forget(self, address: str, authenticated: bool) -> None:
        with self._counting:
            left = self._per_address.get(address, 1) - 1
            if left > 0:
                self._per_address[address] = left
            else:
                self._per_address.pop(address, None)
            if not authenticated:
                self._unauthenticated -= 1

    def token_scope(self, token: str) -> tuple[str, str] | None:
        """The token's (scope, name) (scopes.py); None: no token of this node."""
        return scopes.identify(token, self.config.token_sha256_file, self.config.named_tokens)

    def ready(self) -> bool:
        """Ready to serve: its config loaded and TLS up (it runs), a token file or an operator CA to
        authenticate by, and the state dir (where it is) and its state file (where there is one) read."""
        cfg = self.config
        if not (os.access(cfg.token_sha256_file, os.R_OK) or cfg.client_ca):
            return False
        if not os.path.exists(cfg.state_dir):
            return True  # a node funops has not applied to yet
        if not os.access(cfg.state_dir, os.R_OK | os.X_OK):
            return False
        state = os.path.join(cfg.state_dir, "state.json")
        try:
            with open(state, encoding="utf-8") as f:
                json.load(f)
        except FileNotFoundError:
            return True
        except (OSError, ValueError):
            return False
        return True

    def log(self, line: dict[str, Any]) -> None:
        """One request, one JSON line on stderr (the unit's journal), written whole."""
        text = json.dumps(line, ensure_ascii=True, separators=(",", ":")) + "\n"
        with self._logging:
            sys.stderr.write(text)
            sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per controller run
    server_version = "funops-agent"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        cfg = self.server.config
        self._reader = _Deadline(self.connection, cfg.idle_seconds, cfg.request_seconds)
        # Until authenticated, the whole first request (line and headers) within the pre-auth deadline.
        self._reader.deadline = self.server.preauth_deadline(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._scope: str | None = None  # the request's, once authenticated
        self._who: str | None = None  # its token's name (or the client certificate), for the log
        self._last_scope: str | None = None  # the scope it had (the log is written after _scope is reset)
        self._started: float | None = None  # when its request line came
        self._code: int | None = None
        self._task_types: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request_log instead: http.server's line carries the raw request line

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._code = int(code) if isinstance(code, int) or str(code).isdigit() else None

    def parse_request(self) -> bool:
        self._started = time.monotonic()
        self._code, self._task_types, self._who, self._last_scope = None, [], None, None
        return super().parse_request()

    def handle_one_request(self) -> None:
        self._started = None
        try:
            super().handle_one_request()
        finally:
            if self._started is not None:
                self._request_log()

    def _request_log(self) -> None:
        """What was asked, by whom and how it went; the path without its query, never a header or body."""
        raw = getattr(self, "path", "")
        path = raw.split("?", 1)[0][:200] if isinstance(raw, str) else ""
        line: dict[str, Any] = {
            "event": "request",
            "method": (getattr(self, "command", None) or "")[:16],
            "path": path,
            "status": self._code,
            "seconds": round(time.monotonic() - (self._started or time.monotonic()), 6),
            "client": self.client_address[0] if self.client_address else "",
        }
        if self._who is not None:
            line["scope"], line["token"] = self._last_scope, self._who
        if self._task_types:
            line["tasks"] = self._task_types[:50]
        self.server.log(line)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/v1/health", "/v1/ready"):
            # No credentials, nothing about the agent: ok or not. The connection still counts against
            # the pre-auth caps (it never authenticates) and is closed after the answer.
            self.close_connection = True
            ok = path == "/v1/health" or self.server.ready()
            return self._reply_text(200 if ok else 503, b"ok\n" if ok else b"not ok\n", "text/plain")
        if path != "/metrics":
            self.close_connection = True
            return self._reply(405, {"error": "POST only"})
        self._authenticated(self._metrics)

    def _metrics(self) -> None:
        try:
            self._need("metrics", "metrics")
        except scopes.Forbidden as exc:
            return self._reply(403, {"error": str(exc)})
        self._reply_text(200, self.server.metrics.text().encode(), metrics.CONTENT_TYPE)

    def do_POST(self) -> None:
        self._authenticated(self._post)

    def _authenticated(self, serve: Any) -> None:
        """`serve` the request once it authenticated, holding a worker slot; else 401 and close."""
        try:
            found = self._authorize()
            if found is None:
                self.close_connection = True
                return self._reply(401, {"error": "unauthorized: no valid token or client certificate"})
            self._scope, self._who = found
            self._last_scope = self._scope
            self.server.authenticated(self.connection)
            # The body within its own deadline; a worker only now, for this request (not the connection).
            self._reader.deadline = time.monotonic() + self.server.config.request_seconds
            with self.server.slots:
                serve()
        finally:
            self._reader.deadline = None  # the next request on this connection starts a new one
            self._scope = None

    def _authorize(self) -> tuple[str, str] | None:
        """The request's (scope, who): admin for a client certificate that verified against the
        operator CA (only then does the handshake leave one here), else its token's (scopes.py);
        None: neither."""
        if self.server.config.client_ca and self.connection.getpeercert():
            return "admin", "client-certificate"
        auth = self.headers.get("Authorization", "")
        return self.server.token_scope(auth[len("Bearer ") :]) if auth.startswith("Bearer ") else None

    def _need(self, scope: str, what: str) -> None:
        assert self._scope is not None
        scopes.need(self._scope, scope, what)

    def _may_read(self, tasks: list[m.Task]) -> None:
        """File contents only from what funops manages: never the agent's key, never /etc/shadow."""
        cfg = self.server.config
        for task in tasks:
            paths = task.paths if isinstance(task, m.ReadFiles) else ()
            paths = task.fetch if isinstance(task, m.ProbeExtras) else paths
            for path in paths:
                if not scopes.readable(path, cfg.readable_roots, cfg.never_read):
                    raise scopes.Forbidden(
                        f"{type(task).__name__}: {path!r} is not a file funops manages (under "
                        f"{', '.join(cfg.readable_roots)}; never the agent's key and tokens or the "
                        "host's secrets): refused"
                    )

    def _post(self) -> None:
        try:
            version = int(self.headers.get("X-Funops-Protocol", "0"))
        except ValueError:
            version = 0
        low, high = PROTOCOL
        self._protocol = version
        if not low <= version <= high:
            self.close_connection = True
            return self._reply(426, {"error": f"this agent ({AGENT_VERSION}) speaks protocol {low}..{high}, "
                                              f"the client {version}", "agent": AGENT_VERSION})  # fmt: skip
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):  # not "١٢": int() takes it
            self.close_connection = True
            return self._reply(411, {"error": "a Content-Length is required"})
        if int(length) > self.server.config.max_body:
            self.close_connection = True
            return self._reply(413, {"error": f"body over {self.server.config.max_body} bytes"})
        try:
            body = json.loads(self.rfile.read(int(length)) or b"{}")
            if self.path == "/v1/stream":
                return self._stream(body)
            endpoint = {"/v1/hello": self._hello, "/v1/gather": self._gather, "/v1/tasks": self._tasks,
                        "/v1/status": self._status, "/v1/tokens": self._tokens}.get(self.path)  # fmt: skip
            if endpoint is None:
                return self._reply(404, {"error": f"no endpoint {self.path}"})
            self._reply(200, endpoint(body))
        except scopes.Forbidden as exc:
            self._reply(403, {"error": str(exc)})
        except PullMode as exc:
            self._reply(409, {"error": str(exc)})
        except (ValueError, TypeError, wire.WireError) as exc:
            self._reply(400, {"error": str(exc)})
        except TransportError as exc:  # the task could not be run here (a timeout)
            self._reply(500, {"error": str(exc)})

    def _reply(self, code: int, data: dict[str, Any]) -> None:
        self._reply_text(code, json.dumps(data, separators=(",", ":")).encode(), "application/json")

    def _reply_text(self, code: int, payload: bytes, content_type: str) -> None:
        self.connection.settimeout(self.server.config.request_seconds)  # not what a read left
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self._scope is not None:  # its version only to a client that authenticated
            self.send_header("X-Funops-Agent", AGENT_VERSION)
        self.end_headers()
        self.wfile.write(payload)

    # ---- endpoints ---------------------------------------------------------------------------------

    def _hello(self, body: dict[str, Any]) -> dict[str, Any]:
        self._need("read", "hello")
        return {
            "agent": AGENT_VERSION,
            "build": self.server.config.build,
            "protocol": list(PROTOCOL),
            "capabilities": self.server.capabilities,
            "facts": self.server.node.facts(self.server.config.state_dir),
        }

    def _gather(self, body: dict[str, Any]) -> dict[str, Any]:
        self._need("read", "gather")
        task = wire.decode(body.get("task"))
        self._task_types = [type(task).__name__]
        if not isinstance(task, wire.READS):
            raise wire.WireError(f"gather runs reads only, not {type(task).__name__}")
        self._may_read([task])
        if isinstance(task, m.ReadLogs) and task.follow:  # would hold a worker uncapped: /v1/stream
            raise wire.WireError("gather answers whole: follow a log with /v1/stream")
        if isinstance(task, m.Probe):
            return self.server.node.gather(task, wire.timeout(body.get("timeout")))
        return self.server.node.run([task], batch=False, timeout=wire.timeout(body.get("timeout")))

    def _tasks(self, body: dict[str, Any]) -> dict[str, Any]:
        task_id = body.get("taskId")
        issued = _issued_at(task_id)
        if abs(time.time() - issued) > TASK_WINDOW_SECONDS:
            raise wire.WireError(
                f"task id {task_id} is stale (issued {time.time() - issued:.0f} s ago): refused"
            )
        tasks = wire.decode_all(body.get("tasks"))
        self._task_types = [type(t).__name__ for t in tasks]
        timeout = wire.timeout(body.get("timeout"))
        if not tasks or (not body.get("batch") and len(tasks) != 1):
            raise wire.WireError("tasks: one task, or a batch of them")
        reads_only = all(isinstance(t, READ_ONLY) for t in tasks)  # a bake's checks travel here too
        self._need("read" if reads_only else "apply", "changing the node (tasks: root on it)")
        self._may_read(tasks)
        if not reads_only and os.path.exists(self.server.config.pull_config):
            raise PullMode(
                "this node is in pull mode: it converges from what `funops publish` writes, and refuses "
                "changes pushed to it (to push again: drop its pull: section, then `funops agent install`)"
            )
        result, replayed = self.server.results.run_once(
            task_id, lambda: self.server.node.run(tasks, bool(body.get("batch")), timeout)
        )
        if body.get("batch") and self._protocol < TYPED_RESULTS:  # an older funops: the marker text
            text = bundle_text(wire.decode_steps(result, len(tasks)))
            result = node.answer(CommandResult(0, text.encode(), b""))
        return {**result, "replayed": replayed}

    def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        self._need("read", "status")
        return {
            **self.server.node.status(self.server.config.state_dir),
            "running": self.server.results.running(),
        }

    def _stream(self, body: dict[str, Any]) -> None:
        """A ReadLogs task's output, chunk by chunk, on a connection of its own (closed after)."""
        self._need("read", "a log stream")
        task = wire.decode(body.get("task"))
        self._task_types = [type(task).__name__]
        if not isinstance(task, m.ReadLogs):
            raise wire.WireError(f"stream runs a ReadLogs task only, not {type(task).__name__}")
        self.close_connection = True
        if not self.server.streams.take():
            return self._reply(503, {"error": f"{self.server.streams.cap} log streams are open already"})
        try:
            self._reader.deadline = None  # the request is read: its deadline does not bound the answer
            timeout = wire.timeout(body.get("timeout"))
            try:
                proc = stream.start(task)  # before the headers: a reader that cannot start is a 500
            except OSError as exc:
                return self._reply(500, {"error": f"cannot start the log reader: {exc}"})
            self.connection.settimeout(self.server.config.request_seconds)  # per write: a stuck client
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("X-Funops-Agent", AGENT_VERSION)
                self.end_headers()
                stream.pump(proc, self.connection, self._chunk, timeout)
                self._chunk(b"")  # the last chunk: the stream is whole
            except OSError:
                pass  # the client went away mid-write
            finally:
                stream.end(proc)  # in every case: no reader outlives its stream
        finally:
            self.server.streams.give()

    def _tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add, replace or revoke a named token: its hash and scope (`funops agent token create`)."""
        self._need("admin", "managing the agent's tokens")
        name, entry = scopes.check_token_entry(body)
        scopes.store(self.server.config.named_tokens, name, entry)
        return {"name": name, "scope": entry["scope"] if entry else None}

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
    """The TLS handshake, whole by `deadline` however slowly its bytes come (CPython bounds the whole
    handshake call by the socket's timeout, not each read)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("TLS handshake deadline passed")
    tls.settimeout(left)
    tls.do_handshake()


def _linger(tls: ssl.SSLSocket, seconds: float) -> None:
    """Close a refused handshake (a client certificate from another CA) so that its alert arrives: TLS
    1.3 lets the client send its request before the server has checked its certificate, and a close
    over those unread bytes sends a RST that can overtake the alert (the client sees a bare EOF, not
    "unknown ca"). So: FIN after the alert, then read what still comes until the client closes, within
    `seconds` in all (a trickle cannot hold the worker)."""
    deadline = time.monotonic() + seconds
    try:
        tls.shutdown(socket.SHUT_WR)  # the TLS layer is done: from here on the plain socket
        while (left := deadline - time.monotonic()) > 0:
            tls.settimeout(left)
            if not tls.recv(4096):
                break
    except OSError:
        pass
    finally:
        tls.close()


def _issued_at(task_id: Any) -> float:
    """Task ids are `<unix milliseconds>-<random>`."""
    if not isinstance(task_id, str) or "-" not in task_id:
        raise wire.WireError("taskId: <unix milliseconds>-<random> expected")
    millis, _, nonce = task_id.partition("-")
    if not (millis.isascii() and millis.isdigit()) or len(nonce) < 16:
        raise wire.WireError("taskId: <unix milliseconds>-<random, 16+ characters> expected")
    return int(millis) / 1000


def serve(config: Config) -> None:
    with AgentServer(config) as server:
        _notify_ready()
        server.serve_forever()


def _notify_ready() -> None:
    """Type=notify: `systemctl start` returns once the agent listens (sd_notify, without libsystemd)."""
    where = os.environ.get("NOTIFY_SOCKET")
    if not where:
        return
    address = "\0" + where[1:] if where.startswith("@") else where
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)
