"""Issue 28: agent token scopes on real nodes. A `read` token (`funops agent token create NAME --scope
read`) plans and checks drift through the agents, and its apply is refused (403, naming the scope);
no token reads the agent's own key or /etc/shadow, while a file funops manages is read."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from funops.load.loader import load_project
from funops.tasks import model as m
from funops.transports import TransportError
from funops.transports.agent import AgentTransport
from lab import Lab

from .fleet import funops, make_repo, reset

READ_TOKEN = ".funops/agent/tokens/planner.token"


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("scopes") / "repo", transport="agent")
    made = funops(repo, "agent", "token", "create", "planner", "--scope", "read")
    assert made.returncode == 0, made.stdout + made.stderr
    yield repo
    reset(lab)


def _use_token(repo: Path, token_file: str | None) -> None:
    path = repo / "inventory" / "lab.yaml"
    doc = yaml.safe_load(path.read_text())
    for node in doc["nodes"]:
        node["agent"].pop("tokenFile", None)
        if token_file:
            node["agent"]["tokenFile"] = token_file
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _agent(repo: Path, node: str) -> AgentTransport:
    project = load_project(repo, None)
    return AgentTransport(project.nodes[node], project.settings, project.root)


def test_a_read_token_plans_and_its_apply_is_refused(lab: Lab, repo: Path) -> None:
    _use_token(repo, READ_TOKEN)
    try:
        plan = funops(repo, "plan", "--no-diff")
        assert plan.returncode == 2, plan.stdout + plan.stderr  # gathered: changes pending on fresh nodes
        drift = funops(repo, "drift")
        assert drift.returncode in (0, 2), drift.stdout + drift.stderr
        applied = funops(repo, "apply", "--auto-approve")
        assert applied.returncode != 0
        assert "refused (403)" in applied.stdout + applied.stderr
        assert "needs a token with scope apply" in applied.stdout + applied.stderr
        assert lab.exec("node2", "ls /etc/funops/apps 2>/dev/null | wc -l").stdout.strip() == "0"
    finally:
        _use_token(repo, None)


@pytest.mark.parametrize("token", [READ_TOKEN, None])
def test_no_token_reads_the_agents_key_or_the_hosts_secrets(lab: Lab, repo: Path, token: str | None) -> None:
    _use_token(repo, token)
    lab.exec("node1", "echo 'server_tokens off;' > /etc/nginx/conf.d/funops-scopes-test.conf", check=True)
    agent = _agent(repo, "node1")
    try:
        for secret in ("/etc/funops-agent/tls/agent.key", "/etc/shadow", "/etc/funops-agent/token.sha256"):
            with pytest.raises(
                TransportError, match=r"refused \(403\): ReadFiles: .* not a file funops manages"
            ):
                agent.call(m.ReadFiles((secret,), 65536))
        managed = agent.call(m.ReadFiles(("/etc/nginx/conf.d/funops-scopes-test.conf",), 65536))
        assert base64.b64encode(b"server_tokens off;\n") in managed.stdout
    finally:
        agent.close()
        _use_token(repo, None)
        lab.exec("node1", "rm -f /etc/nginx/conf.d/funops-scopes-test.conf")
