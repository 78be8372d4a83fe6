"""The agent (issue 13) as a real process on a loopback address, reached by the real client transport:
the wire format of every task, authentication, pinning, replays, caps and slow clients. The lab
tests install it on real nodes over SSH and converge through it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from funops.model.inventory import Node
from funops.node import wire
from funops.settings import Settings
from funops.tasks import model as m
from funops.transports import TransportError
from funops.transports.agent import AgentTransport
from tests.unit.task_samples import sample

TOKEN = "unit-test-token-0123456789abcdef"
ADDRESS = "127.0.3.77"


@pytest.mark.parametrize("name", sorted(wire.TASK_TYPES))
def test_every_task_type_crosses_the_wire_unchanged(name: str) -> None:
    task = sample(wire.TASK_TYPES[name])
    assert wire.decode(json.loads(json.dumps(wire.encode(task)))) == task


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "RunShell", "script": "rm -rf /"}, "unknown task type 'RunShell'"),
        ({"type": "StopUnit"}, "missing field unit"),
        ({"type": "StopUnit", "unit": "x", "script": "id"}, "unknown field(s) script"),
        ({"type": "StopUnit", "unit": 3}, "StopUnit.unit: expected str"),
        ({"type": "AwaitIdle", "ports": [80], "timeout": True}, "AwaitIdle.timeout: expected float"),
        ("StopUnit", "a task is an object with a type"),
    ],
)
def test_what_is_not_a_task_is_refused(data: Any, message: str) -> None:
    with pytest.raises(wire.WireError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wire.decode(data)


# ---- a real agent on a loopback address --------------------------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "funops-agent test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    key_file, cert_file = directory / "agent.key", directory / "agent.crt"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file, hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    here = tmp_path_factory.mktemp("agent")
    cert, key, fingerprint = _certificate(here)
    (here / "token.sha256").write_text(hashlib.sha256(TOKEN.encode()).hexdigest() + "\n")
    port = _free_port()
    config = {"bind": ADDRESS, "port": port, "cert": str(cert), "key": str(key), "maxBody": 1 << 20,
              "tokenSha256File": str(here / "token.sha256"), "stateDir": str(here / "state"),
              "requestSeconds": 2, "workers": 4,
              "readRoots": [str(tmp_path_factory.getbasetemp())]}  # fmt: skip
    (here / "agent.json").write_text(json.dumps(config))
    serve = [sys.executable, "-m", "funops.agent", "serve", "--config", str(here / "agent.json")]
    log = (here / "agent.log").open("ab")  # not a pipe: one nobody reads blocks the agent's request log
    proc = subprocess.Popen(serve, stderr=log)
    repo = here / "repo"
    (repo / ".funops" / "agent").mkdir(parents=True)
    (repo / "agent_known_hosts").write_text(f"{ADDRESS}:{port} sha256:{fingerprint}\n")
    (repo / ".funops" / "agent" / "n1.token").write_text(TOKEN + "\n")
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((ADDRESS, port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (here / "agent.log").read_text()
            time.sleep(0.05)
    yield {"port": port, "repo": repo, "dir": here, "fingerprint": fingerprint}
    proc.terminate()
    proc.wait(10)
    log.close()


def _transport(agent: dict[str, Any], **agent_options: Any) -> AgentTransport:
    url = f"https://{ADDRESS}:{agent['port']}"
    node = Node.model_validate(
        {"name": "n1", "address": ADDRESS, "transport": "agent", "agent": {"url": url, **agent_options}}
    )
    return AgentTransport(node, Settings(), agent["repo"])


def _raw(
    agent: dict[str, Any], path: str, body: bytes, token: str = TOKEN, **headers: str
) -> tuple[int, dict]:
    conn = http.client.HTTPSConnection(
        ADDRESS, agent["port"], context=ssl._create_unverified_context(), timeout=10
    )
    hdrs = {"Authorization": f"Bearer {token}", "X-Funops-Protocol": "1", **headers}
    conn.request("POST", path, body=body, headers=hdrs)
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read() or b"{}")
    conn.close()
    return status, data


def test_hello_reports_version_protocol_and_capabilities(agent: dict[str, Any]) -> None:
    hello = _transport(agent).hello()
    assert hello["protocol"] == [1, 2] and hello["agent"]
    assert set(hello["capabilities"]) >= {"systemd", "nginx", "docker", "os"}
    assert "diskFreePct" in hello["facts"]


def test_tasks_run_and_reads_come_back(agent: dict[str, Any], tmp_path: Path) -> None:
    transport = _transport(agent)
    target = tmp_path / "out" / "x.txt"
    task = m.WriteFile(
        str(target), hashlib.sha256(b"hi\n").hexdigest(), "0640", "root", "root", None, content=b"hi\n"
    )
    results, run = transport.run_tasks([task, m.RemoveDirectory(str(tmp_path / "nothing-here"))])
    assert run.exit_code == 0 and [r.exit_code for r in results] == [0, 0]
    assert target.read_bytes() == b"hi\n" and oct(target.stat().st_mode & 0o777) == "0o640"
    read = transport.call(m.ReadFiles((str(target),), 100))
    assert read.exit_code == 0 and b"aGkK" in read.stdout  # base64 of "hi\n"
    transport.close()


def test_an_agent_at_an_address_is_dialled_as_it_is(
    agent: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No lookup of an address and no server name (an address gets no SNI; the pin is the check):
    every run paid getaddrinfo per node and the import of the idna codec to encode the name."""
    asked: list[object] = []
    real_lookup = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: asked.append(a[0]) or real_lookup(*a, **k))
    names: list[str | None] = []
    real_wrap = ssl.SSLContext.wrap_socket

    def wrap(self: ssl.SSLContext, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        names.append(kwargs.get("server_hostname"))
        return real_wrap(self, sock, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", wrap)
    transport = _transport(agent)
    assert transport.hello()["agent"]
    transport.close()
    assert asked == [] and names == [None]


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_no_or_a_wrong_token_is_refused_before_any_work(agent: dict[str, Any], token: str) -> None:
    bad = agent["repo"] / "bad.token"
    bad.write_text(token + "\n")
    with pytest.raises(TransportError, match="node n1: the agent refused the token"):
        _transport(agent, tokenFile=str(bad)).hello()
    status, _ = _raw(agent, "/v1/tasks", b"{}", token=token)
    assert status == 401


def test_a_certificate_other_than_the_pinned_one_gets_no_token(agent: dict[str, Any], tmp_path: Path) -> None:
    pins = tmp_path / "pins"
    pins.write_text(f"{ADDRESS}:{agent['port']} sha256:{'0' * 64}\n")
    with pytest.raises(
        TransportError, match=r"node n1: the agent's certificate .* does not match the pinned"
    ):
        _transport(agent, knownHostsFile=str(pins)).hello()
    with pytest.raises(TransportError, match="node n1: no pinned certificate"):
        _transport(agent, knownHostsFile=str(tmp_path / "none")).hello()


def test_a_replayed_task_id_returns_the_stored_result_without_running_again(
    agent: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "once"
    task = m.WriteFile(str(target), "", "0644", "root", "root", None, content=b"1\n")
    body = json.dumps({"taskId": f"{int(time.time() * 1000)}-{'ab' * 12}", "batch": False,
                       "tasks": [wire.encode(task)]}).encode()  # fmt: skip
    status, first = _raw(agent, "/v1/tasks", body)
    assert status == 200 and first["exit"] == 0 and not first["replayed"] and target.exists()
    target.unlink()
    status, again = _raw(agent, "/v1/tasks", body)
    assert status == 200 and again["replayed"] and again["exit"] == first["exit"]
    assert not target.exists()  # not run a second time


def test_a_stale_task_id_is_refused(agent: dict[str, Any], tmp_path: Path) -> None:
    old = int(time.time() * 1000) - 3_600_000
    body = json.dumps({"taskId": f"{old}-{'cd' * 12}", "tasks": [wire.encode(m.DaemonReload())]}).encode()
    status, answer = _raw(agent, "/v1/tasks", body)
    assert status == 400 and "stale" in answer["error"]


def test_gather_runs_reads_only(agent: dict[str, Any]) -> None:
    body = json.dumps({"task": wire.encode(m.StopUnit("x.service"))}).encode()
    status, answer = _raw(agent, "/v1/gather", body)
    assert status == 400 and "reads only" in answer["error"]


def test_an_oversized_body_is_413_and_another_protocol_426(agent: dict[str, Any]) -> None:
    status, _ = _raw(agent, "/v1/tasks", b"{}", **{"Content-Length": str(2 << 20)})  # refused unread
    assert status == 413
    status, answer = _raw(agent, "/v1/hello", b"{}", **{"X-Funops-Protocol": "9"})
    assert status == 426 and "speaks protocol 1..2" in answer["error"]


def test_a_slow_client_is_dropped_and_others_are_served_meanwhile(agent: dict[str, Any]) -> None:
    raw = socket.create_connection((ADDRESS, agent["port"]))
    slow = ssl._create_unverified_context().wrap_socket(raw)
    began = time.monotonic()
    dropped = False
    try:
        for byte in b"POST /v1/hello HTTP/1.1\r\nHost: x\r\n":
            slow.sendall(bytes([byte]))
            assert _transport(agent).hello()["protocol"] == [1, 2]  # served while the slow one trickles
            time.sleep(0.3)
            if time.monotonic() - began > 6:
                break
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        dropped = True
    if not dropped:
        slow.settimeout(5)
        dropped = slow.recv(1) == b""
    assert dropped and time.monotonic() - began < 8  # the request deadline is 2 s
    slow.close()


def test_fallback_to_ssh_only_when_nothing_answers(agent: dict[str, Any], tmp_path: Path) -> None:
    """The fallback here is a local transport standing in for ssh (the lab has the real one)."""
    from funops.transports.agent import WithFallback
    from funops.transports.local import LocalTransport

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("fallback\n")
    standin = Node.model_validate(
        {"name": "n1", "address": ADDRESS, "transport": "local", "root": str(tmp_path)}
    )
    dead = _transport(agent, knownHostsFile=str(tmp_path / "pins"))
    (tmp_path / "pins").write_text(f"{ADDRESS}:1 sha256:{agent['fingerprint']}\n")
    dead.node = dead.node.model_copy(
        update={"agent": dead.node.agent.model_copy(update={"url": f"https://{ADDRESS}:1"})}
    )
    read = WithFallback(dead, lambda: LocalTransport(standin, tmp_path)).call(
        m.ReadFiles(("/etc/hostname",), 100)
    )
    assert b"ZmFsbGJhY2sK" in read.stdout  # base64 of "fallback\n", read through the stand-in

    bad = agent["repo"] / "bad.token"
    bad.write_text("wrong\n")
    refusing = WithFallback(_transport(agent, tokenFile=str(bad)), lambda: LocalTransport(standin, tmp_path))
    with pytest.raises(TransportError, match="refused the token"):  # answered and refused: no fallback
        refusing.call(m.ReadFiles(("/etc/hostname",), 100))


def test_an_agent_newer_than_this_funops_is_refused(agent: dict[str, Any]) -> None:
    transport = _transport(agent)
    transport._check_version("0.1.0")
    with pytest.raises(TransportError, match=r"node n1: its agent \(99.0.0\) is newer than this funops"):
        transport._check_version("99.0.0")


def test_the_agents_in_process_node_facts_equal_the_probes(tmp_path: Path) -> None:
    """The agent reads disk, nginx, containers, state, key and lock itself (no docker CLI per probe);
    what the controller parses from it equals what it parses from the ssh probe's sh, here."""
    from funops.gather.probe import parse
    from funops.node import host as agent_node
    from funops.node.probe import build_script

    state_dir = tmp_path / "state"
    (state_dir / "lock").mkdir(parents=True)
    (state_dir / "state.json").write_text('{"formatVersion": 1, "apps": {"web": {"version": "2"}}}')
    (state_dir / "fingerprint.key").write_text("k" * 64)
    (state_dir / "lock" / "info").write_text(
        '{"holder": "me@here", "pid": 1, "started": "now", "token": "t"}'
    )
    (state_dir / "lock" / "expires").write_text("4102444800\n")
    (tmp_path / "x.conf").write_text("x\n")
    task = m.Probe((f"file:{tmp_path}/x.conf",), str(state_dir / "state.json"))
    shell = subprocess.run(["sh", "-c", build_script(task.ids, task.state_file, str)], capture_output=True)
    via_sh = parse(shell.stdout.decode(), str)
    answer = agent_node.gather(task, 30)
    via_agent = parse(base64.b64decode(answer["stdout"]).decode(), str)
    assert via_agent.live == via_sh.live and via_agent.state == via_sh.state
    assert via_agent.fingerprint_key == via_sh.fingerprint_key and via_agent.nginx == via_sh.nginx
    assert via_agent.container_count == via_sh.container_count
    assert {k: v for k, v in (via_agent.lock or {}).items() if k != "now"} == {
        k: v for k, v in (via_sh.lock or {}).items() if k != "now"
    }
    assert via_agent.disk_free_pct is not None and via_sh.disk_free_pct is not None
    assert abs(via_agent.disk_free_pct - via_sh.disk_free_pct) < 1
    # A state file that is there but cannot be read is `unreadable` either way, never "no state".
    (state_dir / "state.json").unlink()
    (state_dir / "state.json").mkdir()
    shell = subprocess.run(["sh", "-c", build_script(task.ids, task.state_file, str)], capture_output=True)
    answer = agent_node.gather(task, 30)
    unreadable = parse(base64.b64decode(answer["stdout"]).decode(), str).state_error
    assert unreadable is not None and unreadable == parse(shell.stdout.decode(), str).state_error


def test_pins_written_at_once_by_a_parallel_upgrade_batch_are_all_kept(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from funops.agent.install import _pin

    pins = tmp_path / "agent_known_hosts"
    pins.write_text("127.0.0.1:7391 sha256:old\n")
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda k: _pin(pins, f"127.0.1.{k}:7391", f"{k:064x}"), range(1, 41)))
    _pin(pins, "127.0.0.1:7391", "new")
    lines = pins.read_text().splitlines()
    assert sorted(lines) == sorted(
        [f"127.0.1.{k}:7391 sha256:{k:064x}" for k in range(1, 41)] + ["127.0.0.1:7391 sha256:new"]
    )
