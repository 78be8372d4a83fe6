"""The agent transport: typed tasks to `funops agent serve` over HTTPS, one kept-alive connection per
node. Trust without trust-on-first-use: the agent's certificate must match the fingerprint `funops
agent install` read back over verified SSH (agent_known_hosts, like known_hosts); the token goes out
only after that check. With an operator CA (`funops agent ca init`) the client certificate is
presented too, and a token is then optional."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import http.client
import json
import os
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..model.inventory import Node
from ..node import AGENT_VERSION, DEFAULT_PORT, PROTOCOL
from ..node.dial import address_family, dial
from ..node.wire import READS, ResultError, decode_steps, encode
from ..settings import Settings
from ..tasks import model as m
from .base import CommandResult, StepResult, TransportError
from .exchange import authority, exchange

PINS_FILE = "agent_known_hosts"
IDLE_REUSE_SECONDS = 45  # a kept-alive connection idle longer is not reused (the agent drops it at 60)
RESTART_PATIENCE_SECONDS = 5  # `systemctl restart funops-agent` listens again within about a second
CLIENT_CERT, CLIENT_KEY = ".funops/agent/client.crt", ".funops/agent/client.key"  # `agent ca init`
# TLS alerts by which an agent refuses the presented client certificate (another CA, expired, not for
# client authentication): it answered and refused, never "unreachable" (no ssh fallback).
REFUSED_CERT = ("UNKNOWN_CA", "CERTIFICATE", "ACCESS_DENIED", "DECRYPT_ERROR")


def token_path(repo_root: Path, node: Node) -> Path:
    """Where `agent install` keeps a node's token on the controller (0600, not in git)."""
    configured = node.agent.token_file if node.agent else None
    path = (
        Path(os.path.expanduser(configured)) if configured else Path(".funops/agent") / f"{node.name}.token"
    )
    return path if path.is_absolute() else repo_root / path


def client_paths(repo_root: Path, node: Node) -> tuple[Path, Path] | None:
    """The client certificate and key to present: the node's agent clientCert/clientKey, else this
    operator's from `agent ca init` when both are there; None: no mTLS from this side."""
    agent = node.agent
    if agent is not None and agent.client_cert and agent.client_key:
        pair = (Path(os.path.expanduser(agent.client_cert)), Path(os.path.expanduser(agent.client_key)))
        return (repo_root / pair[0], repo_root / pair[1])  # an absolute one stays itself
    cert, key = repo_root / CLIENT_CERT, repo_root / CLIENT_KEY
    return (cert, key) if cert.exists() and key.exists() else None


def pins_path(repo_root: Path, node: Node) -> Path:
    path = Path(node.agent.known_hosts_file if node.agent else PINS_FILE)
    return path if path.is_absolute() else repo_root / path


def endpoint(node: Node) -> tuple[str, int]:
    assert node.agent is not None
    url = urlsplit(node.agent.url)
    return url.hostname or node.address, url.port or DEFAULT_PORT


def read_pin(repo_root: Path, node: Node) -> str | None:
    """The pinned sha256 of the node's agent certificate, keyed by host:port like known_hosts."""
    host, port = endpoint(node)
    path = pins_path(repo_root, node)
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return _pins(path, st.st_mtime_ns, st.st_size).get(f"{host}:{port}")


@functools.lru_cache(maxsize=8)
def _pins(path: Path, mtime_ns: int, size: int) -> dict[str, str]:
    """The pins file parsed once per version of it (a fleet's nodes each look theirs up: reading the
    whole file per node was quadratic)."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith("sha256:"):
            pins.setdefault(parts[0], parts[1][len("sha256:") :])
    return pins


class AgentUnreachable(TransportError):
    """Nothing answered at the agent's address (not: it answered and refused)."""


@functools.lru_cache(maxsize=8)
def _client_context(client: tuple[Path, Path] | None, stamp: tuple[int, ...]) -> ssl.SSLContext:
    """One TLS context per client certificate for the run (thread-safe to share; making one per
    connection was a measurable part of a 500-node gather)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the pin is the check: a self-signed cert, no CA
    context.verify_mode = ssl.CERT_NONE
    if client is not None:
        context.load_cert_chain(*client)
    return context


class _Resume:
    """A node's last TLS session, offered when its connection is dialled again (after the agent's idle
    timeout, a dropped connection, a `logs -f` stream): the agent resumes it instead of a full
    handshake (no certificate sent, no signature). Per node, as each agent has its own ticket keys;
    only with the context that made it (one per client certificate version).

    The session is read off the connection only when it is wanted (offered, or its connection
    dropped): reading it copies OpenSSL's session with the peer's certificate (~0.15 ms), and a plan's
    connections rest unread (0.3 s of a 2,000-node plan)."""

    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._session: ssl.SSLSession | None = None
        self._sock: ssl.SSLSocket | None = None  # the connection whose session is not read yet
        self._lock = threading.Lock()

    def offer(self, context: ssl.SSLContext) -> ssl.SSLSession | None:
        with self._lock:
            if self._context is not context:
                return None
            self._read()
            return self._session

    def keep(self, conn: http.client.HTTPSConnection) -> None:
        """After an exchange: TLS 1.3 tickets come after the handshake, read with the first answer."""
        sock = conn.sock
        if isinstance(sock, ssl.SSLSocket):
            with self._lock:
                self._context, self._sock, self._session = sock.context, sock, None

    def settle(self) -> None:
        """The connection is about to close: its session is read now, while it can be."""
        with self._lock:
            self._read()

    def forget(self) -> None:
        with self._lock:
            self._context = self._session = self._sock = None

    def _read(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                self._session = self._sock.session or self._session
            self._sock = None


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(
        self,
        host: str,
        port: int,
        pin: str,
        node: str,
        timeout: float,
        client: tuple[Path, Path] | None,
        resume: _Resume | None = None,
    ) -> None:
        try:
            # Keyed by the files' versions too: a certificate renewed in place is read again.
            stamp = tuple(f.stat().st_mtime_ns for f in client) if client else ()
            context = _client_context(client, stamp)
        except (OSError, ssl.SSLError) as exc:
            assert client is not None
            raise TransportError(
                f"node {node}: cannot load the client certificate {client[0]} (key {client[1]}): "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from exc
        super().__init__(host, port, timeout=timeout, context=context)
        self.pin, self.node = pin, node
        self.authority = authority(host, port)  # the Host header
        self.used = time.monotonic()  # the end of its last exchange
        self.resume = resume

    def connect(self) -> None:
        sock = dial(self.host, self.port, self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # An address gets no SNI (RFC 6066) and the pin is the check: no name to encode (which would
        # cost every run the import of the idna codec).
        name = None if address_family(self.host) else self.host
        session = self.resume.offer(self._context) if self.resume else None
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=name, session=session)
        except BaseException:
            sock.close()
            raise
        # Resumed or not, the certificate is checked: a resumed session carries the one it began with.
        der = self.sock.getpeercert(binary_form=True) or b""
        got = hashlib.sha256(der).hexdigest()
        if not hmac.compare_digest(got, self.pin):
            if self.resume:
                self.resume.forget()
            self.sock.close()
            raise TransportError(
                f"node {self.node}: the agent's certificate (sha256:{got}) does not match the pinned "
                f"sha256:{self.pin}: refusing to send it the token. If the agent was reinstalled, run "
                f"`funops agent install {self.node}` again (it reads the new one over verified SSH)"
            )


class AgentTransport:
    def __init__(self, node: Node, settings: Settings, repo_root: Path) -> None:
        if node.agent is None:
            raise TransportError(f"node {node.name}: transport: agent needs an agent: section")
        self.node, self.settings, self.repo_root = node, settings, repo_root
        self._conn: _PinnedConnection | None = None
        self._lock = threading.Lock()
        # (pin, token, client cert and key): read once per run, at first use
        self._creds: tuple[str, str | None, tuple[Path, Path] | None] | None = None
        self._streams: set[_PinnedConnection] = set()  # `logs -f`: a connection each, close() ends them
        self._resume = _Resume()
        self._streams_lock = threading.Lock()

    # ---- the Transport interface -------------------------------------------------------------------

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        if isinstance(task, READS):
            return _result(self._post("gather", {"task": encode(task), "timeout": timeout}, timeout))
        return _result(self._post("tasks", self._batch([task], False, timeout), timeout))

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        # Typed results (node/wire.py), checked field by field: no marker text, no base64. The batch
        # itself ran (exit 0, no output of its own): how each step went is in its result.
        doc = self._post("tasks", self._batch(tasks, True, timeout), timeout)
        try:
            return decode_steps(doc, len(tasks)), CommandResult(0, b"", b"")
        except ResultError as exc:
            raise TransportError(f"node {self.node.name}: its agent's task results: {exc}") from None

    def stream(self, task: m.Task, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        # A finite read comes back whole, at once; an endless one (`logs -f`) over /v1/stream.
        if isinstance(task, m.ReadLogs) and task.follow:
            return self._follow(task, on_line, timeout)
        result = self.call(task, timeout)
        for line in result.text().splitlines():
            on_line(line)
        return result.exit_code

    def path(self, node_path: str) -> str:
        return node_path

    def close(self) -> None:
        with self._streams_lock:
            streams, self._streams = self._streams, set()
        for conn in streams:  # wakes the reading thread; the agent sees the close and ends the reader
            if conn.sock is not None:
                with contextlib.suppress(OSError):
                    conn.sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def rest(self) -> None:
        """Close the kept-alive connection (not a log stream) and forget its TLS session: a session
        kept without its connection holds the agent's parsed certificate, ~12 KB (25 MB at 2,000
        nodes), and resuming saves the controller almost nothing (TLS 1.3 resumption still does the
        key exchange). The next request dials again with a full handshake (Connections.rest)."""
        with self._lock:
            self._resume.forget()
            self._drop()

    # ---- beyond tasks --------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return self._post("hello", {}, None)

    def status(self) -> dict[str, Any]:
        return self._post("status", {}, None)

    def tokens(self, body: dict[str, Any]) -> dict[str, Any]:
        """Add, replace or revoke a named token on the agent (admin: agent/tokens.py)."""
        try:
            return self._post("tokens", body, None)
        except TransportError as exc:
            if "answered 404" in str(exc):
                raise TransportError(
                    f"node {self.node.name}: its agent has no named tokens (older than this funops): "
                    f"run `funops agent upgrade {self.node.name}`"
                ) from exc
            raise

    def fingerprint(self) -> str:
        """The certificate pinned for this node (every connection is checked against it)."""
        return f"sha256:{read_pin(self.repo_root, self.node)}"

    # ---- the wire ----------------------------------------------------------------------------------

    def _follow(self, task: m.ReadLogs, on_line: Callable[[str], None], timeout: float | None) -> int:
        """The task over a connection of its own (the kept-alive one stays free for requests), its
        chunks read as they come: `| line`, then `= exit code` (see node/stream.py)."""
        name = self.node.name
        with self._lock:
            pin, token, client = self._credentials()
            self._resume.settle()  # read off the kept-alive connection while no request uses it
        host, port = endpoint(self.node)
        conn = _PinnedConnection(
            host, port, pin, name, self.settings.ssh.connect_timeout, client, self._resume
        )
        with self._streams_lock:
            self._streams.add(conn)
        try:
            self._dial(conn)
            conn.sock.settimeout(timeout)  # None: a quiet log is no failure; close() ends the wait
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # a vanished agent shows
            conn.request("POST", "/v1/stream", body=json.dumps({"task": encode(task), "timeout": timeout}),
                         headers=self._headers(token))  # fmt: skip
            response = conn.getresponse()
            self._check_version(response.getheader("X-Funops-Agent") or "")
            if response.status == 404:
                raise TransportError(
                    f"node {name}: its agent has no log stream (older than this funops): "
                    f"run `funops agent upgrade {name}`"
                )
            if response.status != 200:
                self._answer(response.status, response.read())
            for raw in iter(response.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                mark, text = line[:2], line[2:]
                if mark == "| ":
                    on_line(text)
                elif mark == "= ":
                    return int(text)
                elif mark == "! ":
                    raise TransportError(f"node {name}: the agent's log stream: {text}")
            if self._hung_up(conn):
                return 0
            raise TransportError(f"node {name}: the agent's log stream ended early")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self._hung_up(conn):
                return 0
            if isinstance(exc, OSError) and (refused := self._cert_refused(exc)):
                raise refused from exc  # TLS 1.3: known at the first read
            raise TransportError(
                f"node {name}: the agent's log stream broke: {exc or type(exc).__name__}"
            ) from exc
        finally:
            with self._streams_lock:
                self._streams.discard(conn)
            conn.close()

    def _hung_up(self, conn: _PinnedConnection) -> bool:
        """close() ended this stream (Ctrl-C, or the run is over): not a failure."""
        with self._streams_lock:
            return conn not in self._streams

    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "X-Funops-Protocol": str(PROTOCOL[1])}
        if token:  # none with a client certificate only
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _batch(self, tasks: list[m.Task], batch: bool, timeout: float | None) -> dict[str, Any]:
        # The id is the idempotency key: a retry after a lost reply gets the stored result.
        task_id = f"{int(time.time() * 1000)}-{secrets.token_hex(12)}"
        return {"taskId": task_id, "batch": batch, "tasks": [encode(t) for t in tasks], "timeout": timeout}

    def _credentials(self) -> tuple[str, str | None, tuple[Path, Path] | None]:
        if self._creds is None:
            self._creds = self._read_credentials()
        return self._creds

    def _read_credentials(self) -> tuple[str, str | None, tuple[Path, Path] | None]:
        name = self.node.name
        pin = read_pin(self.repo_root, self.node)
        if pin is None:
            host, port = endpoint(self.node)
            raise TransportError(
                f"node {name}: no pinned certificate for {host}:{port} in "
                f"{pins_path(self.repo_root, self.node)}: run `funops agent install {name}`"
            )
        client = client_paths(self.repo_root, self.node)
        env = self.node.agent.token_from_env if self.node.agent else None
        if env:
            token = os.environ.get(env)
            if not token and client is None:
                raise TransportError(f"node {name}: the agent token variable {env} is not set")
            return pin, (token or "").strip() or None, client
        path = token_path(self.repo_root, self.node)
        try:
            return pin, path.read_text(encoding="utf-8").strip() or None, client
        except OSError as exc:
            if client is not None and isinstance(exc, FileNotFoundError):
                return pin, None, client  # the client certificate alone authenticates
            raise TransportError(
                f"node {name}: cannot read the agent token {path}: {exc.strerror or exc}"
            ) from exc

    def _post(self, what: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        wait = (timeout or self.settings.ssh.command_timeout) + 30
        with self._lock:
            pin, token, client = self._credentials()
            headers = self._headers(token)
            for attempt in (1, 2):
                if self._conn is not None and _stale(self._conn):
                    self._drop()  # the agent closed it while idle (its idle timeout, a restart)
                if self._conn is None:
                    host, port = endpoint(self.node)
                    self._conn = _PinnedConnection(
                        host,
                        port,
                        pin,
                        self.node.name,
                        self.settings.ssh.connect_timeout,
                        client,
                        self._resume,
                    )
                conn = self._conn
                fresh = conn.sock is None
                if fresh:
                    # A read retried after a lost connection waits a little for a restarting agent.
                    self._connect(conn, patience=RESTART_PATIENCE_SECONDS if attempt == 2 else 0)
                try:
                    conn.sock.settimeout(wait)
                    response = exchange(conn.sock, conn.authority, f"/v1/{what}", payload, headers)
                    data = response.body
                    if fresh:
                        self._resume.keep(conn)
                    conn.used = time.monotonic()
                    break
                except TransportError:
                    self._drop()
                    raise
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    # Lost after the request went out: the agent died or restarted under it. A read
                    # is retried once on a fresh connection; tasks are not: the agent may have run
                    # them, and a restarted agent has forgotten their ids (results live in memory).
                    self._drop()
                    if what == "tasks":
                        raise TransportError(
                            f"node {self.node.name}: the agent connection was lost with tasks in flight "
                            f"({exc or type(exc).__name__}); not retried, as they may have run (was the "
                            "agent restarted?): run again to converge the node"
                        ) from exc
                    if fresh or attempt == 2:
                        raise TransportError(f"node {self.node.name}: agent connection lost: {exc}") from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._drop()
                    # TLS 1.3: a refused client certificate is known at the first read, not at connect
                    if isinstance(exc, OSError) and (refused := self._cert_refused(exc)):
                        raise refused from exc
                    raise TransportError(
                        f"node {self.node.name}: the agent stopped answering: {exc or type(exc).__name__}"
                    ) from exc
            if response.will_close:
                self._drop()
        self._check_version(response.getheader("X-Funops-Agent") or "")
        return self._answer(response.status, data)

    def _check_version(self, agent: str) -> None:
        """An agent newer than this CLI may run tasks this CLI does not know the effects of: refused."""
        if _version(agent) > _version(AGENT_VERSION):
            raise TransportError(
                f"node {self.node.name}: its agent ({agent}) is newer than this funops ({AGENT_VERSION}): "
                "upgrade funops here, or install this version's agent (`funops agent upgrade`)"
            )

    def _connect(self, conn: _PinnedConnection, patience: float = 0) -> None:
        """Dial; while nothing answers, again every quarter second for `patience` seconds."""
        give_up = time.monotonic() + patience
        while True:
            try:
                return self._dial(conn)
            except AgentUnreachable:
                if time.monotonic() >= give_up:
                    self._drop()
                    raise
                time.sleep(0.25)
            except TransportError:
                self._drop()
                raise

    def _dial(self, conn: _PinnedConnection) -> None:
        try:
            conn.connect()
        except TransportError:
            raise
        except OSError as exc:  # refused, timed out, no route: nothing answered
            refused = self._cert_refused(exc)
            if refused is not None:  # it answered, and refused the certificate: not "unreachable"
                raise refused from exc
            url = self.node.agent.url if self.node.agent else "?"
            raise AgentUnreachable(
                f"node {self.node.name}: cannot reach the agent at {url}: {exc or type(exc).__name__}"
            ) from exc

    def _cert_refused(self, exc: OSError) -> TransportError | None:
        """The agent's TLS alert refusing the client certificate presented, said plainly; None when
        the error is something else."""
        name, reason = self.node.name, getattr(exc, "reason", None) or ""
        client = self._creds[2] if self._creds else None
        if isinstance(exc, ssl.SSLError) and client is not None and any(w in reason for w in REFUSED_CERT):
            return TransportError(
                f"node {name}: client certificate not accepted by the agent ({reason}): {client[0]} is "
                "not from the operator CA the agent was installed with, or it expired; issue one with "
                "`funops agent ca issue NAME` where the CA is, or run `funops agent install "
                f"{name}` to ship this repo's CA"
            )
        return None

    def _drop(self) -> None:
        if self._conn is not None:
            self._resume.settle()
            self._conn.close()
            self._conn = None

    def _answer(self, status: int, data: bytes) -> dict[str, Any]:
        try:
            doc = json.loads(data or b"{}")
        except ValueError:
            doc = {"error": data[:200].decode(errors="replace")}
        if status == 200:
            return doc
        name, why = self.node.name, doc.get("error", "")
        if status == 401:
            where = token_path(self.repo_root, self.node)
            if self._creds is not None and self._creds[1] is None and self._creds[2] is not None:
                raise TransportError(
                    f"node {name}: the agent refused the request (401): no token in {where}, and the "
                    f"agent does not take client certificates: run `funops agent install {name}` "
                    "(it ships this repo's operator CA)"
                )
            raise TransportError(
                f"node {name}: the agent refused the token (401): check {where}, or run "
                f"`funops agent install {name}` (or `funops agent rotate-token {name}`)"
            )
        if status == 403:  # authenticated, but the token's scope does not cover this
            raise TransportError(f"node {name}: the agent refused (403): {why}")
        if status == 426:
            raise TransportError(f"node {name}: version skew: {why}; run `funops agent upgrade {name}`")
        if status == 400 and ("unknown field" in why or "unknown task type" in why):
            raise TransportError(
                f"node {name}: its agent is older than this funops ({why}): run `funops agent upgrade {name}`"
            )
        raise TransportError(f"node {name}: the agent answered {status}: {why}")


def _stale(conn: _PinnedConnection) -> bool:
    """A kept-alive connection not to reuse: idle long enough for the agent to close it, or closed
    already (an idle connection has nothing to read: readable means EOF or a reset is waiting)."""
    if conn.sock is None:
        return False
    if time.monotonic() - conn.used > IDLE_REUSE_SECONDS:
        return True
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _version(text: str) -> tuple[int, ...]:
    """0.1.0 → (0, 1, 0); anything unreadable sorts lowest."""
    parts = text.split("-")[0].split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else ()


def _result(doc: dict[str, Any]) -> CommandResult:
    try:
        return CommandResult(
            int(doc["exit"]), base64.b64decode(doc["stdout"]), base64.b64decode(doc["stderr"])
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise TransportError(f"a malformed agent reply: {exc}") from exc


class WithFallback:
    """`fallback: ssh`: when the agent does not answer at all, the rest of the run goes over ssh. An
    agent that answers and refuses (a wrong certificate or token, version skew) is never bypassed."""

    def __init__(self, agent: AgentTransport, ssh: Callable[[], Any]) -> None:
        self.node, self._agent, self._make_ssh = agent.node, agent, ssh
        self._ssh: Any = None

    def _use(self, op: Callable[[Any], Any]) -> Any:
        if self._ssh is None:
            try:
                return op(self._agent)
            except AgentUnreachable:
                self._ssh = self._make_ssh()
        return op(self._ssh)

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        return self._use(lambda t: t.call(task, timeout))

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        return self._use(lambda t: t.run_tasks(tasks, timeout))

    def stream(self, task: m.Task, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        return self._use(lambda t: t.stream(task, on_line, timeout))

    def path(self, node_path: str) -> str:
        return node_path

    def rest(self) -> None:
        self._agent.rest()

    def close(self) -> None:
        self._agent.close()
        if self._ssh is not None:
            self._ssh.close()
