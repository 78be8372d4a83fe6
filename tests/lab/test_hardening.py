"""Issue 18 on real nodes: the secure defaults still run, and the running processes show them —
a sandboxed non-root unit, a user funops created, a container without capabilities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab

from .fleet import apply, edit_yaml, http, make_repo, reset

# A second systemd app: a named user that funops creates, on a port below 1024.
WORKER = """\
apiVersion: funops/v1
kind: Application
metadata: {name: worker}
spec:
  type: systemd
  selector: {nodes: [node2]}
  version: "1"
  command: /usr/bin/python3 -m http.server --bind {{ node.bind }} --directory /srv/worker 800
  port: 800
  user: funops-worker
  createUser: true
  configFiles:
    - {path: /srv/worker/health, content: "ok\\n", owner: funops-worker, group: funops-worker, mode: "0640"}
  healthCheck: {type: http, path: /health, interval: 1, retries: 20}
"""

CLEAN = """\
systemctl disable --now worker.service 2>/dev/null; rm -f /etc/systemd/system/worker.service
systemctl daemon-reload; userdel funops-worker 2>/dev/null; rm -rf /srv/worker /var/lib/funops-apps
"""


@pytest.fixture(scope="module")
def repo(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    lab.exec("node2", CLEAN)
    yield make_repo(lab, tmp_path_factory.mktemp("hardening") / "repo")
    reset(lab)
    lab.exec("node2", CLEAN)


def test_the_example_runs_sandboxed_as_a_dynamic_user(lab: Lab, repo: Path) -> None:
    code, _, err = apply(repo)
    assert code == 0, err
    node = lab.nodes[1]
    assert http(f"http://{node.address}:8080/health") == (200, "ok\n")
    show = lab.exec(node, "systemctl show -p DynamicUser,ProtectSystem,User web.service").stdout
    # DynamicUser names its user after the unit
    assert sorted(show.split()) == ["DynamicUser=yes", "ProtectSystem=strict", "User=web"]
    owner = lab.exec(node, "ps -o user= -C python3").stdout.split()
    assert owner and "root" not in owner
    score = lab.exec(node, "systemd-analyze security web.service | tail -1").stdout
    assert float(score.split(":")[1].split()[0]) <= 2.5, score


def test_the_container_runs_without_capabilities(lab: Lab, repo: Path) -> None:
    node = lab.nodes[1]
    inspect = json.loads(lab.exec(node, "docker inspect api").stdout)[0]["HostConfig"]
    assert inspect["CapDrop"] == ["ALL"] and not inspect["CapAdd"]
    assert inspect["SecurityOpt"] == ["no-new-privileges"]
    assert inspect["PidsLimit"] == 1024 and inspect["ReadonlyRootfs"] is False
    # The kernel's view of the running process: no effective or bounding capabilities.
    status = lab.exec(node, "cat /proc/$(docker inspect -f '{{.State.Pid}}' api)/status").stdout
    caps = dict(line.split(":\t") for line in status.splitlines() if line.startswith("Cap"))
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapBnd"], 16) == 0
    assert status.split("NoNewPrivs:\t")[1][0] == "1"
    assert http(f"http://{node.address}:8081/health") == (200, "ok")


def test_read_only_root_and_user_of_a_container(lab: Lab, repo: Path) -> None:
    def edit(docs: list[dict]) -> None:
        docs[0]["spec"] |= {"readOnlyRootfs": True, "user": "65534:65534", "pidsLimit": 64}

    edit_yaml(repo / "manifests" / "api.yaml", edit)
    code, _, err = apply(repo)
    assert code == 0, err
    node = lab.nodes[1]
    host = json.loads(lab.exec(node, "docker inspect api").stdout)[0]
    assert host["HostConfig"]["ReadonlyRootfs"] is True and host["HostConfig"]["PidsLimit"] == 64
    assert host["Config"]["User"] == "65534:65534"
    assert http(f"http://{node.address}:8081/health") == (200, "ok")


def test_create_user_and_a_privileged_port(lab: Lab, repo: Path) -> None:
    (repo / "manifests" / "worker.yaml").write_text(WORKER)
    code, evs, err = apply(repo)
    assert code == 0, err
    assert any(e["event"] == "task" and e["task"] == "ensure user funops-worker" for e in evs)
    node = lab.nodes[1]
    assert lab.exec(node, "id -u funops-worker").returncode == 0
    assert lab.exec(node, "stat -c %U /srv/worker/health").stdout.strip() == "funops-worker"
    assert lab.exec(node, "ps -o user= -C python3").stdout.split().count("funops-worker") == 1
    assert http(f"http://{node.address}:800/health") == (200, "ok\n")
    code, _, err = apply(repo)  # idempotent: the user exists, nothing else changes
    assert code == 0, err
