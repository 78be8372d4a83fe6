"""Issue 30, the node side: the agent's GET /metrics (the Prometheus text format, its escaping, what it
reads from the state dir), the `metrics` scope that may read it and nothing else, /v1/health and
/v1/ready without credentials, and one JSON log line per request that never holds a secret. The
agent runs as a real process (agentproc.py); the lab's test_agent_metrics.py scrapes real nodes."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funops.node import metrics, wire
from funops.tasks import model as m
from tests.unit.agentproc import AgentProcess
from tests.unit.test_agent import TOKEN, _certificate

ADDRESS = "127.0.3.90"
METRICS_TOKEN = "metrics-token-0123456789abcdef01"
SECRET = "s3cr3t-V4lue-that-must-not-leak"


def _request(
    agent: AgentProcess, method: str, path: str, token: str | None = None, body: Any = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPSConnection(
        ADDRESS, agent.port, context=ssl._create_unverified_context(), timeout=15
    )
    headers = {"X-Funops-Protocol": "1", **({"Authorization": f"Bearer {token}"} if token else {})}
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data, response


def _give_token(agent: AgentProcess, name: str, token: str, scope: str) -> None:
    body = {"name": name, "scope": scope, "sha256": hashlib.sha256(token.encode()).hexdigest()}
    status, data, _ = _request(agent, "POST", "/v1/tokens", TOKEN, body)
    assert status == 200, data


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path_factory.mktemp("agentmetrics"), ADDRESS, node="n1")
    process.start()
    _give_token(process, "prometheus", METRICS_TOKEN, "metrics")
    yield process
    process.stop()


# ---- the exposition format ---------------------------------------------------------------------------


def test_label_values_are_escaped_and_each_family_has_help_and_type_once() -> None:
    out = metrics.Exposition()
    out.add("funops_node_lock_held", 1, node="n1", holder='al"ice\\ops\nroot@h')
    out.add("funops_node_disk_free_bytes", 10, node="n1", path="/")
    out.add("funops_node_disk_free_bytes", 2.5, node="n1", path="/srv")
    text = out.text()
    assert 'funops_node_lock_held{node="n1",holder="al\\"ice\\\\ops\\nroot@h"} 1\n' in text
    assert text.count("# TYPE funops_node_disk_free_bytes gauge\n") == 1
    assert text.count("# HELP funops_node_disk_free_bytes ") == 1
    assert 'funops_node_disk_free_bytes{node="n1",path="/srv"} 2.5\n' in text
    assert "# TYPE funops_app_restarts_total counter\n" in text  # declared, even with no app
    for line in text.splitlines():  # every line: a comment or `name{labels} value`
        assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[^\n]*\})? [-+0-9.eInfNa]+", line), line


def _state_dir(tmp: Path, port: int, bind: str = "127.0.0.1") -> Path:
    state = tmp / "state"
    (state / "lock").mkdir(parents=True)
    health = {"type": "http", "path": "/health", "expectStatus": 200}
    placement = {"app": "web", "type": "systemd", "version": "3", "bind": bind, "port": port,
                 "unit": "web.service", "health": health}  # fmt: skip
    record = {"id": "web-3", "app": "web", "number": 3, "status": "succeeded",
              "revision": {"commit": "abc123"}, "started": "2026-01-02T03:04:00+00:00",
              "finished": "2026-01-02T03:04:05+00:00", "placement": placement}  # fmt: skip
    doc = {"apps": {"web": {"version": "3", "revision": "abc123"}}, "releases": {"web": [record]}}
    (state / "state.json").write_text(json.dumps(doc))
    (state / "lock" / "info").write_text(json.dumps({"holder": "ci@runner", "pid": 1, "token": SECRET}))
    (state / "lock" / "expires").write_text(str(int(time.time()) + 60))
    return state


class _Health(http.server.BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Health.hits = 0
    yield int(server.server_address[1])
    server.shutdown()


def _samples(text: str, name: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf"^{name}(\{{.*\}}) (\S+)$", text, re.M)}


def test_the_collector_reads_apps_apply_lock_and_certificates(tmp_path: Path, health_server: int) -> None:
    certs = tmp_path / "certs"
    (certs / "site" / "0a1b").mkdir(parents=True)
    cert, _, _ = _certificate(tmp_path)
    (certs / "site" / "0a1b" / "fullchain.pem").write_bytes(cert.read_bytes())
    os.symlink("0a1b", certs / "site" / "current")
    collector = metrics.Collector("n1", str(_state_dir(tmp_path, health_server)), certs_dir=str(certs))
    text = collector.text()
    labels = '{app="web",node="n1",kind="systemd",release="web-3",version="3"}'
    assert _samples(text, "funops_app_health_check_ok") == {labels: 1.0}
    assert labels in _samples(text, "funops_app_health_check_duration_seconds")
    assert _samples(text, "funops_node_last_apply_success") == {'{node="n1"}': 1.0}
    assert _samples(text, "funops_node_last_apply_timestamp_seconds") == {'{node="n1"}': 1767323045.0}
    info = '{node="n1",revision="abc123",generation="",result="succeeded"}'
    assert _samples(text, "funops_node_last_apply_info") == {info: 1.0}
    assert _samples(text, "funops_node_lock_held") == {'{node="n1",holder="ci@runner"}': 1.0}
    not_after = _samples(text, "funops_certificate_not_after_timestamp_seconds")
    assert list(not_after) == ['{node="n1",certificate="site",serial="0a1b"}']
    assert abs(next(iter(not_after.values())) - (time.time() + 86400)) < 600
    assert f'path="{tmp_path / "state"}"' in text
    assert SECRET not in text  # the lock's token is never exported
    collector.text()
    assert _Health.hits == 1  # checked once per HEALTH_EVERY, however often it is scraped


def test_a_health_check_goes_to_the_nodes_own_addresses_only(tmp_path: Path, health_server: int) -> None:
    asked: list[str] = []
    collector = metrics.Collector(
        "n1",
        str(_state_dir(tmp_path, health_server, bind="192.0.2.7")),
        own_address=lambda h: bool(asked.append(h)),
    )
    text = collector.text()
    assert asked == ["192.0.2.7"] and _Health.hits == 0  # not this node's: never connected to
    assert list(_samples(text, "funops_app_health_check_ok").values()) == [0.0]


def test_a_pull_nodes_last_converge_and_last_success(tmp_path: Path) -> None:
    (tmp_path / "pull.json").write_text(json.dumps({
        "result": "failed", "error": "generation 8: failed", "generation": 7, "revision": "r7",
        "lastPoll": "2026-01-02T03:10:00+00:00", "lastContact": "2026-01-02T03:10:00+00:00",
        "appliedAt": "2026-01-02T03:00:00+00:00",
    }))  # fmt: skip
    text = metrics.Collector("n1", str(tmp_path)).text()
    assert _samples(text, "funops_node_last_apply_success") == {'{node="n1"}': 0.0}
    assert _samples(text, "funops_node_last_apply_info") == {
        '{node="n1",revision="r7",generation="7",result="failed"}': 1.0
    }
    # Failing: the last success is when it last converged, not its last contact.
    assert _samples(text, "funops_node_pull_last_success_timestamp_seconds") == {'{node="n1"}': 1767322800.0}


# ---- the agent: scopes, health, request logs ----------------------------------------------------------


def test_metrics_need_a_token_and_tell_an_unauthenticated_client_nothing(agent: AgentProcess) -> None:
    status, _, response = _request(agent, "GET", "/metrics")
    assert status == 401 and response.getheader("X-Funops-Agent") is None
    status, data, response = _request(agent, "GET", "/metrics", METRICS_TOKEN)
    assert status == 200 and response.getheader("Content-Type") == metrics.CONTENT_TYPE
    assert 'funops_agent_info{node="n1",' in data.decode() and "# TYPE funops_app_up gauge" in data.decode()
    assert _request(agent, "GET", "/metrics", TOKEN)[0] == 200  # admin includes metrics


def test_a_metrics_token_reads_metrics_and_nothing_else(agent: AgentProcess, tmp_path: Path) -> None:
    probe = {"task": wire.encode(m.Probe((f"file:{tmp_path}/x",), str(tmp_path / "state.json")))}
    read = {"task": wire.encode(m.ReadFiles((str(agent.here / "agent.json"),), 65536))}
    tasks = {
        "taskId": f"{int(time.time() * 1000)}-{os.urandom(12).hex()}",
        "tasks": [wire.encode(m.DaemonReload())],
    }
    token = {"name": "x", "scope": "admin", "sha256": "0" * 64}
    logs = {"task": wire.encode(m.ReadLogs(units=("web.service",), lines=10))}
    for path, body in [("/v1/hello", {}), ("/v1/gather", probe), ("/v1/gather", read), ("/v1/tasks", tasks),
                       ("/v1/status", {}), ("/v1/tokens", token), ("/v1/stream", logs)]:  # fmt: skip
        status, data, _ = _request(agent, "POST", path, METRICS_TOKEN, body)
        assert status == 403, (path, data)
        assert "this one has scope metrics" in json.loads(data)["error"]
    assert "x" not in json.loads((agent.here / "tokens.json").read_text())["tokens"]


def test_health_and_ready_answer_anyone_with_ok_only(agent: AgentProcess) -> None:
    for path in ("/v1/health", "/v1/ready"):
        status, data, response = _request(agent, "GET", path)
        assert (status, data) == (200, b"ok\n")
        assert response.getheader("X-Funops-Agent") is None  # nor its version in Server:
        assert response.getheader("Server").strip() == "funops-agent"


def test_not_ready_when_the_state_file_cannot_be_read(tmp_path: Path) -> None:
    process = AgentProcess(tmp_path, ADDRESS)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.json").write_text("{not json")
    process.start()
    try:
        assert _request(process, "GET", "/v1/ready")[:2] == (503, b"not ok\n")
        assert _request(process, "GET", "/v1/health")[:2] == (200, b"ok\n")
    finally:
        process.stop()


def test_each_request_is_one_json_log_line_without_a_secret(tmp_path: Path) -> None:
    process = AgentProcess(tmp_path, ADDRESS, env={"FUNOPS_TEST_SECRET": SECRET})
    process.start()
    try:
        _give_token(process, "prometheus", METRICS_TOKEN, "metrics")
        write = m.WriteFile(
            str(tmp_path / "secret.env"), "", "0600", "root", "root", None, content=SECRET.encode()
        )
        body = {"taskId": f"{int(time.time() * 1000)}-{os.urandom(12).hex()}", "tasks": [wire.encode(write)]}
        assert _request(process, "POST", "/v1/tasks", TOKEN, body)[0] == 200
        assert _request(process, "GET", f"/metrics?token={SECRET}", METRICS_TOKEN)[0] == 200
        assert _request(process, "GET", "/metrics", SECRET)[0] == 401
        assert _request(process, "GET", "/v1/health")[0] == 200
        metrics_text = _request(process, "GET", "/metrics", TOKEN)[1].decode()
        deadline = time.monotonic() + 10  # a request's line is written once its answer is sent
        while process.log.read_text().count('"event":"request"') < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.stop()
    log = process.log.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert [(x["method"], x["path"], x["status"]) for x in lines] == [
        ("POST", "/v1/tokens", 200), ("POST", "/v1/tasks", 200), ("GET", "/metrics", 200),
        ("GET", "/metrics", 401), ("GET", "/v1/health", 200), ("GET", "/metrics", 200),
    ]  # fmt: skip
    assert (
        lines[1]["tasks"] == ["WriteFile"] and lines[1]["token"] == "install" and lines[1]["scope"] == "admin"
    )
    assert lines[2]["token"] == "prometheus" and lines[2]["scope"] == "metrics"
    assert "token" not in lines[3] and all(isinstance(x["seconds"], float) for x in lines)
    for text in (log, metrics_text):
        for secret in (SECRET, TOKEN, METRICS_TOKEN):
            assert secret not in text
