"""Issue 28.1 against real agents: the two health-check attacks of the issue, sent with the node's
token as a controller sends tasks, are refused (400, naming the field) and run nothing on the node
as root; the same check with proper values answers as it always did. The host attack needs a
container that runs (its liveness comes before the tcp probe): the example's `api` is applied first."""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import Lab

from .fleet import AGENT_PORT, apply, make_repo, reset

MARKER = "/root/funops-values-marker"  # not /tmp: the agent has a private one (PrivateTmp=yes)


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("values") / "repo", transport="agent")
    code, evs, err = apply(repo)
    assert code == 0, err + json.dumps(evs[-1:])
    yield repo
    reset(lab)


def _api_node(lab: Lab) -> str:
    for node in lab.nodes:
        if lab.exec(node, "docker inspect -f '{{.State.Running}}' api").stdout.strip() == "true":
            return node.name
    raise AssertionError("the example's api container runs on no node")


def _send(lab: Lab, repo: Path, node: str, task: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A batch of one task to the node's agent, with its token, as the controller sends tasks."""
    token = (repo / ".funops" / "agent" / f"{node}.token").read_text().strip()
    body = {"taskId": f"{int(time.time() * 1000)}-{secrets.token_hex(12)}", "tasks": [task], "batch": True}
    conn = http.client.HTTPSConnection(
        lab.node(node).address, AGENT_PORT, context=ssl._create_unverified_context(), timeout=60
    )
    try:
        conn.request("POST", "/v1/tasks", body=json.dumps(body).encode(),
                     headers={"Authorization": f"Bearer {token}", "X-Funops-Protocol": "1"})  # fmt: skip
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw or b"{}")
        except ValueError:
            raise AssertionError(f"the agent answered {response.status} with {raw[:300]!r}") from None
    finally:
        conn.close()


def _check(host: str = "127.0.0.1", **probe: Any) -> dict[str, Any]:
    check = {"type": "tcp", "path": "/health", "port": 1, "expect_status": 200, "interval": 0.1, "timeout": 1,
             "retries": 2, **probe}  # fmt: skip
    return {"type": "CheckHealth", "app": "api", "host": host, "port": 8081, "unit": None, "container": "api",
            "min_healthy_seconds": 0, "check": check}  # fmt: skip


@pytest.mark.parametrize(
    ("task", "field"),
    [
        (_check(retries=f"1 ]; then :; fi; id > {MARKER}; if [ 1"), "CheckHealth.check.retries"),
        (_check(host=f"127.0.0.1/1; id > {MARKER}; #"), "CheckHealth.host"),
    ],
    ids=["retries", "host"],
)
def test_the_issues_health_check_attacks_are_refused_and_run_nothing(
    lab: Lab, repo: Path, task: dict[str, Any], field: str
) -> None:
    node = _api_node(lab)
    lab.exec(node, f"rm -f {MARKER}", check=True)
    status, answer = _send(lab, repo, node, task)
    assert status == 400, answer
    assert answer["error"].startswith(f"{field}: "), answer
    assert lab.exec(node, f"test -e {MARKER}").returncode != 0, "the attack ran a command on the node"


def test_a_proper_health_check_still_answers(lab: Lab, repo: Path) -> None:
    """The same task with proper values: the check runs (port 1 is closed: it fails, as it should)."""
    node = _api_node(lab)
    status, answer = _send(lab, repo, node, _check())
    assert status == 200, answer
    out = base64.b64decode(answer["stdout"]).decode()
    assert "@@funops-task 0 1 " in out and "unhealthy after 2 tries" in out, out


def test_a_health_check_of_another_host_is_refused(lab: Lab, repo: Path) -> None:
    """Not a port scanner: only the node's own addresses (192.0.2.1 is TEST-NET-1, refused unsent)."""
    status, answer = _send(lab, repo, _api_node(lab), _check(host="192.0.2.1"))
    assert status == 400 and answer["error"].startswith("CheckHealth.host: 192.0.2.1 is not an address"), (
        answer
    )
