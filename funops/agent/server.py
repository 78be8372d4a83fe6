"""`funops agent serve`: HTTPS on the node's own address, typed tasks only, nothing unauthenticated.

Every request is a POST of JSON to /v1/<endpoint> with `Authorization: Bearer <token>` (its sha256 is
compared in constant time with the node's token file, read per request so a rotation needs no
restart) and `X-Funops-Protocol`. Endpoints: hello, gather (read tasks), tasks (a task id that is
an idempotency key with a timestamp: a repeat returns the stored result, a stale one is refused),
status, stream (an app's logs as they come, chunked: stream.py). A slow client is dropped at a
deadline; bodies are capped (413); workers are bounded.

mTLS, optional: with `clientCa` in agent.json, a connection whose TLS client certificate verified
against that operator CA needs no token; a certificate from another CA fails the handshake.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..pull import CONFIG_FILE as PULL_CONFIG
from ..tasks import model as m
from ..transports.base import TransportError
from . import AGENT_VERSION, PROTOCOL, node, stream, wire

TASK_WINDOW_SECONDS = 300  # a task id older (or newer) than this is refused: replays need a fresh id
# What a node in pull mode still runs for a controller: reads (plan, drift, nodes, logs, a bake's checks).
READ_ONLY = (m.Probe, m.ReadFiles, m.ProbeExtras, m.ReadLogs, m.CheckHealth)


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

    @classmethod
    def load(cls, path: str) -> Config:
        """agent.json's camelCase keys (as `agent install` writes them) as these fields."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return cls(**{re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): v for k, v in data.items()})


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
        self._slots = threading.BoundedSemaphore(config.workers)
        self.streams = stream.Slots(config.workers - 2)  # a stream holds a worker: leave some to plans
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.load_cert_chain(config.cert, config.key)
        if config.client_ca:
            # Optional, not required: a token alone still authenticates. Only this CA is trusted (no
            # system store): a presented certificate that does not verify fails the handshake.
            self.tls.load_verify_locations(cafile=config.client_ca)
            self.tls.verify_mode = ssl.CERT_OPTIONAL
        super().__init__((config.bind, config.port), Handler)

    def server_bind(self) -> None:
        # Not HTTPServer's: it looks its own address up (socket.getfqdn), a reverse DNS query that
        # hangs the start where the resolver does not answer and keeps the idna codec in memory.
        # Nothing here reads server_name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        self._slots.acquire()  # at most `workers` connections served; the rest wait in the backlog
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms per request
            request.settimeout(self.config.request_seconds)
            tls = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()  # in this worker
            except ssl.SSLError:
                _linger(tls, min(1.0, self.config.request_seconds))
                raise
            super().process_request_thread(tls, client_address)
        except (OSError, ssl.SSLError):
            self.shutdown_request(request)
        finally:
            self._slots.release()

    def token_ok(self, token: str) -> bool:
        try:
            with open(self.config.token_sha256_file, encoding="ascii") as f:
                want = f.read().strip()
        except OSError:
            return False  # no token file: nobody gets in
        got = hashlib.sha256(token.encode()).hexdigest()
        return bool(want) and hmac.compare_digest(got, want)


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per controller run
    server_version = "funops-agent"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        cfg = self.server.config
        self._reader = _Deadline(self.connection, cfg.idle_seconds, cfg.request_seconds)
        self.rfile = io.BufferedReader(self._reader)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the journal has the unit's start/stop; requests carry secrets in their bodies

    def do_GET(self) -> None:
        self._reply(405, {"error": "POST only"})

    def do_POST(self) -> None:
        try:
            self._post()
        finally:
            self._reader.deadline = None  # the next request on this connection starts a new one

    def _authorized(self) -> bool:
        """A client certificate that verified against the operator CA (only then does the handshake
        leave one here), or the node's token."""
        if self.server.config.client_ca and self.connection.getpeercert():
            return True
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and self.server.token_ok(auth[len("Bearer ") :])

    def _post(self) -> None:
        if not self._authorized():
            self.close_connection = True
            return self._reply(401, {"error": "unauthorized: no valid token or client certificate"})
        try:
            version = int(self.headers.get("X-Funops-Protocol", "0"))
        except ValueError:
            version = 0
        low, high = PROTOCOL
        if not low <= version <= high:
            self.close_connection = True
            return self._reply(426, {"error": f"this agent ({AGENT_VERSION}) speaks protocol {low}..{high}, "
                                              f"the client {version}", "agent": AGENT_VERSION})  # fmt: skip
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
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
                        "/v1/status": self._status}.get(self.path)  # fmt: skip
            if endpoint is None:
                return self._reply(404, {"error": f"no endpoint {self.path}"})
            self._reply(200, endpoint(body))
        except PullMode as exc:
            self._reply(409, {"error": str(exc)})
        except (ValueError, TypeError, wire.WireError) as exc:
            self._reply(400, {"error": str(exc)})
        except TransportError as exc:  # the task could not be run here (a timeout)
            self._reply(500, {"error": str(exc)})

    def _reply(self, code: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.connection.settimeout(self.server.config.request_seconds)  # not what a read left
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Funops-Agent", AGENT_VERSION)
        self.end_headers()
        self.wfile.write(payload)

    # ---- endpoints ---------------------------------------------------------------------------------

    def _hello(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "agent": AGENT_VERSION,
            "build": self.server.config.build,
            "protocol": list(PROTOCOL),
            "capabilities": self.server.capabilities,
            "facts": self.server.node.facts(self.server.config.state_dir),
        }

    def _gather(self, body: dict[str, Any]) -> dict[str, Any]:
        task = wire.decode(body.get("task"))
        if not isinstance(task, wire.READS):
            raise wire.WireError(f"gather runs reads only, not {type(task).__name__}")
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
        timeout = wire.timeout(body.get("timeout"))
        if not tasks or (not body.get("batch") and len(tasks) != 1):
            raise wire.WireError("tasks: one task, or a batch of them")
        if not all(isinstance(t, READ_ONLY) for t in tasks) and os.path.exists(
            self.server.config.pull_config
        ):
            raise PullMode(
                "this node is in pull mode: it converges from what `funops publish` writes, and refuses "
                "changes pushed to it (to push again: drop its pull: section, then `funops agent install`)"
            )
        result, replayed = self.server.results.run_once(
            task_id, lambda: self.server.node.run(tasks, bool(body.get("batch")), timeout)
        )
        return {**result, "replayed": replayed}

    def _status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.server.node.status(self.server.config.state_dir),
            "running": self.server.results.running(),
        }

    def _stream(self, body: dict[str, Any]) -> None:
        """A ReadLogs task's output, chunk by chunk, on a connection of its own (closed after)."""
        task = wire.decode(body.get("task"))
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

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


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
    if not millis.isdigit() or len(nonce) < 16:
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
