"""Issue 28: the agent as a real process on a loopback address under hostile clients. Nobody without a
token can starve it (idle and trickling connections hold no worker, an address is capped), it tells an
unauthenticated client nothing of itself, and a token's scope bounds what it may do: a `read` token
plans but cannot apply, and no read returns the agent's key or the host's secrets."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funops.node import wire
from funops.tasks import model as m
from funops.transports import TransportError
from tests.unit.agentproc import AgentProcess
from tests.unit.task_samples import unchecked
from tests.unit.test_agent import TOKEN

ADDRESS = "127.0.3.78"
ATTACKER = "127.0.3.201"  # the hostile connections' source address; the client's is 127.0.0.1
READ_TOKEN = "read-token-0123456789abcdef0123"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    # The defaults of a real install: a 60 s idle timeout, 8 workers.
    process = AgentProcess(tmp_path_factory.mktemp("agentsec"), ADDRESS, workers=8, requestSeconds=10)
    process.start()
    yield process
    process.stop()


def _post(
    agent: AgentProcess, path: str, body: Any, token: str | None = TOKEN, method: str = "POST", **headers: str
) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
    conn = http.client.HTTPSConnection(
        ADDRESS, agent.port, context=ssl._create_unverified_context(), timeout=15
    )
    hdrs = {"X-Funops-Protocol": "1", **({"Authorization": f"Bearer {token}"} if token else {}), **headers}
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data or b"{}"), response


def _task_id() -> str:
    return f"{int(time.time() * 1000)}-{os.urandom(12).hex()}"


# ---- nothing to an unauthenticated client ------------------------------------------------------------


def test_the_version_goes_to_authenticated_clients_only(agent: AgentProcess) -> None:
    status, _, response = _post(agent, "/v1/hello", {}, token="wrong")
    assert status == 401 and response.getheader("X-Funops-Agent") is None
    status, _, response = _post(agent, "/v1/hello", None, token=None, method="GET")
    assert status == 405 and response.getheader("X-Funops-Agent") is None
    status, _, response = _post(agent, "/v1/hello", {})
    assert status == 200 and response.getheader("X-Funops-Agent")


@pytest.mark.parametrize("length", ["²", "12³", "¹"])
def test_a_non_ascii_digit_in_content_length_is_411(agent: AgentProcess, length: str) -> None:
    """`"²".isdigit()` is True and `int("²")` raises: the handler died, the client saw a bare EOF.
    (Header bytes are read as Latin-1: these are the digits a client can put there.)"""
    raw = socket.create_connection((ADDRESS, agent.port), timeout=15)
    with ssl._create_unverified_context().wrap_socket(raw) as tls:
        tls.sendall(
            f"POST /v1/hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"X-Funops-Protocol: 1\r\nContent-Length: {length}\r\n\r\n".encode("latin-1")
        )
        assert tls.recv(4096).startswith(b"HTTP/1.1 411")


def test_a_task_id_with_non_ascii_digits_is_refused_plainly(agent: AgentProcess) -> None:
    body = {"taskId": f"{'²' * 13}-{'ab' * 12}", "tasks": [wire.encode(m.DaemonReload())]}
    status, answer, _ = _post(agent, "/v1/tasks", body)
    assert status == 400 and answer["error"].startswith("taskId: <unix milliseconds>")


# ---- nobody can starve it -----------------------------------------------------------------------------


def _tls_from(source: str, port: int) -> ssl.SSLSocket:
    raw = socket.socket()
    raw.settimeout(10)
    raw.bind((source, 0))
    raw.connect((ADDRESS, port))
    return ssl._create_unverified_context().wrap_socket(raw)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except (OSError, ssl.SSLError):
        return True  # reset: closed too


def test_an_idle_connection_is_closed_at_the_pre_auth_deadline(agent: AgentProcess) -> None:
    """Not at the 60 s idle timeout of a kept-alive connection: it never authenticated."""
    began = time.monotonic()
    with _tls_from(ATTACKER, agent.port) as tls:
        assert _closed_within(tls, 30)
    assert time.monotonic() - began < 20  # pre-auth deadline 5 s; the idle timeout would be 60 s


def test_a_trickled_tls_handshake_is_closed_at_the_pre_auth_deadline(agent: AgentProcess) -> None:
    """A ClientHello a byte a second: the handshake is part of the pre-auth deadline (it held a worker
    for the 10 s request deadline before)."""
    raw = socket.socket()
    raw.bind((ATTACKER, 0))
    raw.connect((ADDRESS, agent.port))
    began, closed = time.monotonic(), False
    hello = _client_hello()
    with raw:
        for byte in hello:
            try:
                raw.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            if _closed_within(raw, 1):
                closed = True
                break
            if time.monotonic() - began > 30:
                break
    assert closed and time.monotonic() - began < 20  # pre-auth deadline 5 s


def _client_hello() -> bytes:
    """A real ClientHello, as the client's first flight."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl._create_unverified_context().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_an_address_has_at_most_16_connections(agent: AgentProcess) -> None:
    socks = [_tls_from("127.0.3.202", agent.port) for _ in range(16)]
    try:
        extra = socket.socket()
        extra.bind(("127.0.3.202", 0))
        extra.connect((ADDRESS, agent.port))
        assert _closed_within(extra, 3)  # at once (the pre-auth deadline is 5 s)
        extra.close()
        assert _post(agent, "/v1/hello", {})[0] == 200  # another address is served meanwhile
    finally:
        for s in socks:
            s.close()


class _Siege:
    """`idle` TLS connections that send nothing and `trickling` ones that send a header byte a second,
    from one address, each reconnecting (half a second later) whenever the agent drops it."""

    def __init__(self, port: int, idle: int, trickling: int) -> None:
        self.port, self.stop = port, threading.Event()
        self.threads = [threading.Thread(target=self._lane, args=(k < trickling,), daemon=True)
                        for k in range(idle + trickling)]  # fmt: skip
        self.connected = 0
        self._lock = threading.Lock()

    def __enter__(self) -> _Siege:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def _lane(self, trickle: bool) -> None:
        request = b"POST /v1/hello HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200
        while not self.stop.is_set():
            try:
                with _tls_from(ATTACKER, self.port) as tls:
                    with self._lock:
                        self.connected += 1
                    tls.settimeout(1)
                    for byte in request if trickle else iter(int, 1):  # idle: forever
                        if self.stop.is_set():
                            return
                        if trickle:
                            tls.sendall(bytes([byte]))
                        try:
                            if tls.recv(1) == b"":
                                break  # dropped
                        except TimeoutError:
                            pass
            except (OSError, ssl.SSLError, ValueError):
                pass
            self.stop.wait(0.5)


def test_idle_and_trickling_connections_do_not_delay_an_authenticated_request(
    agent: AgentProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """200 silent and 200 slowloris connections from one address, reconnecting when dropped: a client
    elsewhere is still served (the agent before issue 28 gave each connection one of its 8 workers
    before authenticating, and held it for 60 s: every request timed out)."""
    baseline = _timed_hellos(agent, 3)
    with _Siege(agent.port, idle=200, trickling=200) as siege:
        time.sleep(8)  # past the pre-auth deadline: the first were dropped and have come back
        under = _timed_hellos(agent, 10)
        assert siege.connected > 16  # the siege was there (and was capped, and came back)
    with capsys.disabled():
        print(f"\nhello: {max(baseline) * 1000:.0f} ms alone, worst {max(under) * 1000:.0f} ms under siege")
    assert max(under) < 10  # generous: the noisy machine; the agent before issue 28 never answered


def _timed_hellos(agent: AgentProcess, count: int) -> list[float]:
    took = []
    for _ in range(count):
        transport = agent.transport()
        began = time.monotonic()
        assert transport.hello()["protocol"] == [1, 2]
        took.append(time.monotonic() - began)
        transport.close()
    return took


# ---- token scopes -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_token(agent: AgentProcess) -> str:
    digest = hashlib.sha256(READ_TOKEN.encode()).hexdigest()
    status, answer, _ = _post(agent, "/v1/tokens", {"name": "monitoring", "scope": "read", "sha256": digest})
    assert status == 200 and answer == {"name": "monitoring", "scope": "read"}
    stored = json.loads((agent.here / "tokens.json").read_text())
    assert stored["tokens"]["monitoring"] == {"scope": "read", "sha256": digest}  # its hash, never it
    assert (agent.here / "tokens.json").stat().st_mode & 0o777 == 0o600
    return READ_TOKEN


def test_a_read_token_plans_but_cannot_apply(agent: AgentProcess, read_token: str, tmp_path: Path) -> None:
    transport = agent.transport()
    (agent.repo / ".funops" / "agent" / "n1.token").write_text(read_token + "\n")
    try:
        probe = transport.call(m.Probe((f"file:{tmp_path}/x",), str(tmp_path / "state.json")))
        assert probe.exit_code == 0 and b"@@funops" in probe.stdout  # gather: what a plan reads
        assert "apps" in transport.status()
        target = tmp_path / "written"
        write = m.WriteFile(str(target), "", "0644", "root", "root", None, content=b"x\n")
        refused = r"refused \(403\): changing the node .*needs a token with scope apply"
        with pytest.raises(TransportError, match=refused):
            transport.run_tasks([write])
        assert not target.exists()
    finally:
        transport.close()
        (agent.repo / ".funops" / "agent" / "n1.token").write_text(TOKEN + "\n")
    status, answer, _ = _post(agent, "/v1/tokens", {"name": "x", "scope": "admin", "sha256": "0" * 64},
                              token=read_token)  # fmt: skip
    assert status == 403 and "needs a token with scope admin" in answer["error"]


def test_the_install_token_is_admin(agent: AgentProcess, tmp_path: Path) -> None:
    target = tmp_path / "written"
    write = m.WriteFile(str(target), "", "0644", "root", "root", None, content=b"x\n")
    body = {"taskId": _task_id(), "tasks": [wire.encode(write)]}
    assert _post(agent, "/v1/tasks", body)[0] == 200 and target.read_bytes() == b"x\n"


def test_a_revoked_token_is_refused_at_once(agent: AgentProcess) -> None:
    token = "revoke-me-0123456789abcdef01234"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert _post(agent, "/v1/tokens", {"name": "ci", "scope": "apply", "sha256": digest})[0] == 200
    assert _post(agent, "/v1/hello", {}, token=token)[0] == 200
    assert _post(agent, "/v1/tokens", {"name": "ci", "revoke": True})[0] == 200
    assert _post(agent, "/v1/hello", {}, token=token)[0] == 401


@pytest.mark.parametrize("which", ["shadow", "agent key", "a link to the agent key", "relative"])
def test_reads_never_return_the_agents_key_or_the_hosts_secrets(
    agent: AgentProcess, read_token: str, tmp_path: Path, which: str
) -> None:
    link = tmp_path / "innocent.conf"  # under the read roots (the tests' temporary directory)
    link.symlink_to(agent.here / "agent.key")
    path = {"shadow": "/etc/shadow", "agent key": str(agent.here / "agent.key"),
            "a link to the agent key": str(link), "relative": "etc/shadow"}[which]  # fmt: skip
    # A relative path never gets as far as the read roots: the task's own check refuses it (400).
    read = unchecked(m.ReadFiles, paths=(path,), limit=100000)
    extras = unchecked(m.ProbeExtras, nginx_test=False, fetch=(path,), limit=100000)
    status_expected, error_expected = (
        (400, "is not an absolute path") if which == "relative" else (403, "is not a file funops manages")
    )
    for token in (read_token, TOKEN):  # admin too: a read is a read
        for endpoint, body in (
            ("/v1/gather", {"task": wire.encode(read)}),
            ("/v1/tasks", {"taskId": _task_id(), "tasks": [wire.encode(read)]}),
            ("/v1/gather", {"task": wire.encode(extras)}),
        ):
            status, answer, _ = _post(agent, endpoint, body, token=token)
            assert status == status_expected and error_expected in answer["error"], (endpoint, answer)


def test_a_managed_file_is_read(agent: AgentProcess, read_token: str, tmp_path: Path) -> None:
    (tmp_path / "app.conf").write_text("hi\n")
    task = wire.encode(m.ReadFiles((str(tmp_path / "app.conf"),), 100))
    status, answer, _ = _post(agent, "/v1/gather", {"task": task}, token=read_token)
    assert status == 200 and answer["exit"] == 0


def test_a_malformed_token_request_is_400(agent: AgentProcess) -> None:
    for body in ({"name": "a b", "scope": "read", "sha256": "0" * 64}, {"name": "a", "scope": "root",
                 "sha256": "0" * 64}, {"name": "a", "scope": "read", "sha256": "secret-token"}):  # fmt: skip
        assert _post(agent, "/v1/tokens", body)[0] == 400


def test_token_create_gives_the_agents_a_named_token_and_keeps_it_here(agent: AgentProcess) -> None:
    from typer.testing import CliRunner

    from funops.cli.main import app

    repo = agent.repo
    (repo / "funops.yaml").write_text("apiVersion: funops/v1\n")
    (repo / "inventory").mkdir(exist_ok=True)
    (repo / "inventory" / "nodes.yaml").write_text(
        f"nodes:\n  - name: n1\n    address: {ADDRESS}\n    transport: agent\n"
        f"    agent: {{url: 'https://{ADDRESS}:{agent.port}'}}\n"
    )
    done = CliRunner().invoke(
        app, ["agent", "token", "create", "grafana", "--scope", "read", "-C", str(repo)]
    )
    assert done.exit_code == 0, done.output
    path = repo / ".funops" / "agent" / "tokens" / "grafana.token"
    assert "scope read" in done.output and path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    assert _post(agent, "/v1/hello", {}, token=token)[0] == 200
    body = {"taskId": _task_id(), "tasks": [wire.encode(m.DaemonReload())]}
    status, answer, _ = _post(agent, "/v1/tasks", body, token=token)
    assert status == 403 and "scope apply" in answer["error"]
    again = CliRunner().invoke(
        app, ["agent", "token", "create", "grafana", "--scope", "apply", "-C", str(repo)]
    )
    assert again.exit_code == 0 and path.read_text().strip() == token  # the same token, a wider scope
    assert _post(agent, "/v1/tasks", {**body, "taskId": _task_id()}, token=token)[0] != 403
    bad = CliRunner().invoke(app, ["agent", "token", "create", "x", "--scope", "root", "-C", str(repo)])
    assert bad.exit_code == 1 and "one of metrics, read, apply, admin" in bad.output
    gone = CliRunner().invoke(app, ["agent", "token", "revoke", "grafana", "n1", "-C", str(repo)])
    assert gone.exit_code == 0 and _post(agent, "/v1/hello", {}, token=token)[0] == 401


def test_a_pull_node_takes_reads_from_any_token_and_writes_from_none(tmp_path: Path) -> None:
    pull_config = tmp_path / "pull.json"
    pull_config.write_text("{}")
    process = AgentProcess(tmp_path, "127.0.3.79", pullConfig=str(pull_config))
    process.start()
    try:
        digest = hashlib.sha256(READ_TOKEN.encode()).hexdigest()
        status, _, _ = _post_to(process, "/v1/tokens", {"name": "r", "scope": "read", "sha256": digest})
        assert status == 200
        read = {"task": wire.encode(m.ReadFiles((str(pull_config),), 1000))}
        assert _post_to(process, "/v1/gather", read, token=READ_TOKEN)[0] == 200
        write = {"taskId": _task_id(), "tasks": [wire.encode(m.DaemonReload())]}
        assert _post_to(process, "/v1/tasks", write, token=READ_TOKEN)[0] == 403
        status, answer, _ = _post_to(process, "/v1/tasks", write)  # admin
        assert status == 409 and "pull mode" in answer["error"]
    finally:
        process.stop()


def _post_to(
    process: AgentProcess, path: str, body: Any, token: str = TOKEN
) -> tuple[int, dict[str, Any], Any]:
    conn = http.client.HTTPSConnection(
        process.address, process.port, context=ssl._create_unverified_context(), timeout=15
    )
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"X-Funops-Protocol": "1", "Authorization": f"Bearer {token}"})  # fmt: skip
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return status, data, response
