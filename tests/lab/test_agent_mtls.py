"""Issue 13, mTLS: with an operator CA in the repo (`funops agent ca init`), `agent install` ships its
certificate (never its key) to the nodes and the agents take its client certificates: a plan works
with the certificate alone (no token on the controller), a second install changes nothing, and a
certificate from another CA is refused with a message naming the node."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import edit_yaml, funops, make_repo, reset, set_transport, use_agents

CA_ON_NODE = "/etc/funops-agent/tls/client-ca.pem"


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("mtls") / "repo")
    made = funops(repo, "agent", "ca", "init", "--name", "lab-operator")
    assert made.returncode == 0, made.stdout + made.stderr
    use_agents(lab, repo)
    yield repo
    reset(lab)


def test_install_ships_the_ca_certificate_and_never_its_key(lab: Lab, repo: Path) -> None:
    ca = (repo / "agent_client_ca.pem").read_text()
    for node in lab.nodes:
        assert lab.exec(node, f"cat {CA_ON_NODE}").stdout == ca
        config = json.loads(lab.exec(node, "cat /etc/funops-agent/agent.json").stdout)
        assert config["clientCa"] == CA_ON_NODE
        keys = lab.exec(node, "grep -rl 'PRIVATE KEY' /etc/funops-agent || true").stdout.split()
        assert keys == ["/etc/funops-agent/tls/agent.key"]  # the node's own, nothing of the CA


def test_a_plan_works_with_the_client_certificate_alone(lab: Lab, repo: Path) -> None:
    tokens = repo / ".funops" / "agent"
    aside = repo / "tokens-aside"
    aside.mkdir()
    for token in tokens.glob("*.token"):
        shutil.move(token, aside / token.name)
    try:
        plan = funops(repo, "plan", "--no-diff", "-o", "json")
        assert plan.returncode == 2, plan.stdout + plan.stderr  # changes pending, every node reached
        assert all(n.get("error") is None for n in json.loads(plan.stdout)["nodes"]), plan.stdout
    finally:
        for token in aside.iterdir():
            shutil.move(token, tokens / token.name)


def test_install_again_changes_nothing_and_restarts_nothing(lab: Lab, repo: Path) -> None:
    pid = lab.exec("node1", "systemctl show -p MainPID --value funops-agent").stdout.strip()
    set_transport(repo, "ssh")
    done = funops(repo, "agent", "install", "node1")
    set_transport(repo, "agent")
    assert done.returncode == 0 and "up to date" in done.stdout, done.stderr
    assert lab.exec("node1", "systemctl show -p MainPID --value funops-agent").stdout.strip() == pid


def test_a_certificate_from_another_ca_is_refused_naming_the_node(
    lab: Lab, repo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "funops.yaml").write_text((repo / "funops.yaml").read_text())
    assert funops(other, "agent", "ca", "init", "--name", "intruder").returncode == 0
    cert, key = other / ".funops/agent/client.crt", other / ".funops/agent/client.key"

    def foreign(docs: list[dict]) -> None:
        docs[0]["defaults"]["agent"] = {"clientCert": str(cert), "clientKey": str(key)}

    inventory = repo / "inventory" / "lab.yaml"
    kept = inventory.read_text()
    edit_yaml(inventory, foreign)
    try:
        plan = funops(repo, "plan", "--no-diff", "-o", "json", "--node", "node2")
    finally:
        inventory.write_text(kept)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    error = {n["name"]: n.get("error") for n in json.loads(plan.stdout)["nodes"]}["node2"]
    assert "node node2: client certificate not accepted" in error, error
