"""The agent transport: typed tasks to `funops agent serve` over HTTPS, one kept-alive connection per
node. Trust without trust-on-first-use: the agent's certificate must match the fingerprint `funops
agent install` read back over verified SSH (agent_known_hosts, like known_hosts); the token goes out
only after that check. With an operator CA (`funops agent ca init`) the client certificate is
presented too, and a token is then optional."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..agent import AGENT_VERSION, DEFAULT_PORT, PROTOCOL
from ..agent.wire import READS, encode
from ..model.inventory import Node
from ..model.settings import Settings
from ..tasks import model as m
from ..tasks.shell import parse_bundle
from .base import CommandResult, StepResult, TransportError

PINS_FILE = "agent_known_hosts"
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
    try:
        lines = pins_path(repo_root, node).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[0] == f"{host}:{port}" and parts[1].startswith("sha256:"):
            return parts[1][len("sha256:") :]
    return None


class AgentUnreachable(TransportError):
    """Nothing answered at the agent's address (not: it answered and refused)."""


class _PinnedConnection(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, pin: str, node: str, timeout: float, client: tuple[Path, Path] | None
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = False  # the pin below is the check: a self-signed cert, no CA
        context.verify_mode = ssl.CERT_NONE
        if client is not None:
            try:
                context.load_cert_chain(*client)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(
                    f"node {node}: cannot load the client certificate {client[0]} (key {client[1]}): "
                    f"{getattr(exc, 'strerror', None) or exc}"
                ) from exc
        super().__init__(host, port, timeout=timeout, context=context)
        self.pin, self.node = pin, node

    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        der = self.sock.getpeercert(binary_form=True) or b""
        got = hashlib.sha256(der).hexdigest()
        if not hmac.compare_digest(got, self.pin):
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

    # ---- the Transport interface -------------------------------------------------------------------

    def call(self, task: m.Task, timeout: float | None = None) -> CommandResult:
        if isinstance(task, READS):
            return _result(self._post("gather", {"task": encode(task), "timeout": timeout}, timeout))
        return _result(self._post("tasks", self._batch([task], False, timeout), timeout))

    def run_tasks(
        self, tasks: list[m.Task], timeout: float | None = None
    ) -> tuple[list[StepResult], CommandResult]:
        result = _result(self._post("tasks", self._batch(tasks, True, timeout), timeout))
        return parse_bundle(result.text()), result

    def stream(self, task: m.Task, on_line: Callable[[str], None], timeout: float | None = None) -> int:
        # The agent answers whole requests: a finite read comes back at once, an endless one
        # (`logs -f`) would need a streaming endpoint the agent does not have yet.
        if isinstance(task, m.ReadLogs) and task.follow:
            raise TransportError(
                f"node {self.node.name}: following a stream is not available over the agent transport "
                "yet; run without -f"
            )
        result = self.call(task, timeout)
        for line in result.text().splitlines():
            on_line(line)
        return result.exit_code

    def path(self, node_path: str) -> str:
        return node_path

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- beyond tasks --------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return self._post("hello", {}, None)

    def status(self) -> dict[str, Any]:
        return self._post("status", {}, None)

    def fingerprint(self) -> str:
        """The certificate pinned for this node (every connection is checked against it)."""
        return f"sha256:{read_pin(self.repo_root, self.node)}"

    # ---- the wire ----------------------------------------------------------------------------------

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
            headers = {"Content-Type": "application/json", "X-Funops-Protocol": str(PROTOCOL[1])}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            for attempt in (1, 2):
                fresh = self._conn is None
                if fresh:
                    host, port = endpoint(self.node)
                    self._conn = _PinnedConnection(
                        host, port, pin, self.node.name, self.settings.ssh.connect_timeout, client
                    )
                conn = self._conn
                if conn.sock is None:
                    self._connect(conn)
                try:
                    conn.sock.settimeout(wait)
                    conn.request("POST", f"/v1/{what}", body=payload, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    break
                except TransportError:
                    self._drop()
                    raise
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    # An idle kept-alive connection the agent closed: retry once on a fresh one (every
                    # request is idempotent: reads, or tasks under their id).
                    self._drop()
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
            if response.getheader("Connection", "").lower() == "close":
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

    def _connect(self, conn: _PinnedConnection) -> None:
        try:
            conn.connect()
        except TransportError:
            self._drop()
            raise
        except OSError as exc:  # refused, timed out, no route: nothing answered
            self._drop()
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
        if status == 426:
            raise TransportError(f"node {name}: version skew: {why}; run `funops agent upgrade {name}`")
        if status == 400 and ("unknown field" in why or "unknown task type" in why):
            raise TransportError(
                f"node {name}: its agent is older than this funops ({why}): run `funops agent upgrade {name}`"
            )
        raise TransportError(f"node {name}: the agent answered {status}: {why}")


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

    def close(self) -> None:
        self._agent.close()
        if self._ssh is not None:
            self._ssh.close()
