"""Issue 14: `funops agent install` for a node in pull mode, on a real node. Besides the agent, the
node gets the engine's runtime (the controller's packages, compiled ones included), the poll's config,
the signing public key and a running timer, and the repo records its agent's certificate; its python
loads the engine from that runtime; a second install is a no-op; dropping `pull:` stops the timer and
removes the poll's config."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from funops.load.loader import load_project
from funops.transports.agent import AgentTransport
from lab import Lab

from .fleet import funops, make_repo, reset, set_transport

NODE = "node1"
ENGINE = "pydantic, pydantic_core, jinja2, yaml, deepdiff, funops.apply.executor, funops.plan.releases"
# The node's own python, the runtime first on the path as `funops-agent.pyz pull` puts it.
IMPORTS = (
    '/usr/bin/python3 -I -c \'import sys; sys.path[:0] = ["/opt/funops-agent/current/site", '
    f'"/opt/funops-agent/current/funops-agent.pyz"]; import {ENGINE}; '
    "print(pydantic_core._pydantic_core.__file__)'"
)


def _set_pull(repo: Path, pull: dict[str, object] | None) -> None:
    path = repo / "inventory" / "lab.yaml"
    doc = yaml.safe_load(path.read_text())
    for node in doc["nodes"]:
        node.pop("pull", None)
        if node["name"] == NODE and pull is not None:
            node["pull"] = pull
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _install(repo: Path) -> str:
    done = funops(repo, "agent", "install", NODE)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("pull") / "repo")
    set_transport(repo, "ssh")  # agent URLs for the nodes; the install goes over ssh
    _set_pull(repo, {"store": "http://127.0.0.1:9/store", "intervalSeconds": 300, "splaySeconds": 5})
    done = funops(repo, "agent", "pull-key", "init")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "installed" in _install(repo)
    yield repo
    reset(lab)


def test_the_timer_runs_and_the_poll_has_its_config_and_key(lab: Lab, repo: Path) -> None:
    timer = "systemctl is-active funops-pull.timer; systemctl is-enabled funops-pull.timer"
    assert lab.exec(NODE, timer).stdout.split() == ["active", "enabled"]
    config = json.loads(lab.exec(NODE, "cat /etc/funops-agent/pull.json").stdout)
    assert config == {
        "node": NODE, "store": "http://127.0.0.1:9/store", "publicKey": "/etc/funops-agent/pull-signing.pub",
        "stateDir": "/var/lib/funops", "intervalSeconds": 300, "splaySeconds": 5, "cohort": "default",
    }  # fmt: skip
    key = lab.exec(NODE, "cat /etc/funops-agent/pull-signing.pub").stdout
    assert key == (repo / "certs" / "pull-signing.pub").read_text()
    der = "openssl x509 -in /etc/funops-agent/tls/agent.crt -outform der | sha256sum"
    der_sha = lab.exec(NODE, der).stdout
    recorded = (repo / "certs" / "agents" / f"{NODE}.pem").read_bytes()  # what publish seals bundles to
    assert hashlib.sha256(ssl.PEM_cert_to_DER_cert(recorded.decode())).hexdigest() == der_sha.split()[0]
    unit = lab.exec(NODE, "systemctl show -p ExecStart --value funops-pull.service").stdout
    assert "/opt/funops-agent/current/funops-agent.pyz pull --config /etc/funops-agent/pull.json" in unit


def test_the_nodes_python_loads_the_engine_from_the_runtime(lab: Lab, repo: Path) -> None:
    done = lab.exec(NODE, IMPORTS)
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = "/opt/funops-agent/current/site/pydantic_core/_pydantic_core.cpython-311-"
    assert done.stdout.strip().startswith(compiled), done.stdout


def test_a_second_install_changes_nothing_and_restarts_nothing(lab: Lab, repo: Path) -> None:
    show = (
        "systemctl show -p MainPID --value funops-agent; "
        "systemctl show -p ActiveEnterTimestampMonotonic --value funops-pull.timer"
    )
    before = lab.exec(NODE, show).stdout.split()
    assert "up to date" in _install(repo)
    assert lab.exec(NODE, show).stdout.split() == before


def test_the_agent_reports_what_the_polls_wrote(lab: Lab, repo: Path) -> None:
    lab.exec(NODE, "mkdir -p /var/lib/funops && echo '{\"generation\": 3}' > /var/lib/funops/pull.json")
    project = load_project(repo, None, None, manifests=False)
    agent = AgentTransport(project.nodes[NODE], project.settings, project.root)
    try:
        assert agent.status()["pull"] == {"generation": 3}
    finally:
        agent.close()
        lab.exec(NODE, "rm -f /var/lib/funops/pull.json")


def test_dropping_pull_stops_the_timer_and_removes_the_config(lab: Lab, repo: Path) -> None:
    _set_pull(repo, None)
    assert "installed" in _install(repo)
    state = lab.exec(NODE, "systemctl is-active funops-pull.timer; ls /etc/funops-agent").stdout.split()
    assert state[0] == "inactive" and "pull.json" not in state and "pull-signing.pub" not in state
    assert lab.exec(NODE, "test -e /etc/systemd/system/funops-pull.timer").returncode != 0
