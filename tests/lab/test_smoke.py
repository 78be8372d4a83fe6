"""Smoke tests of every lab node: the real sshd, sudo, nginx, systemd and nested docker work."""

from __future__ import annotations

import shlex
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import Lab, Node

REGISTRY_APP = "127.0.0.1:5000/funops/testapp"


def ssh(
    lab: Lab, node: Node, user: str, cmd: str, known_hosts: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The plain OpenSSH client, trusting only the given known_hosts (the lab's by default)."""
    argv = [
        "ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={known_hosts or lab.known_hosts_path}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-i", str(lab.key_path), "-o", "IdentitiesOnly=yes",
        f"{user}@{node.address}", cmd,
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def http_get(url: str, timeout: float = 5, host: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_http(url: str, timeout: float = 30) -> tuple[int, str]:
    """GET `url`, retrying while nothing listens yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return http_get(url)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_ssh_as_root_with_strict_host_key_checking(lab: Lab, lab_node: str) -> None:
    node = lab.node(lab_node)
    proc = ssh(lab, node, "root", "id -un; hostname")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["root", node.name]


def test_ssh_as_deploy_with_passwordless_sudo(lab: Lab, lab_node: str) -> None:
    proc = ssh(lab, lab.node(lab_node), "deploy", "id -un && sudo -n true && sudo -n id -un")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["deploy", "root"]


def test_unknown_host_key_is_refused(lab: Lab, lab_node: str, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    proc = ssh(lab, lab.node(lab_node), "root", "true", known_hosts=empty)
    assert proc.returncode != 0
    assert "Host key verification failed" in proc.stderr


def test_nginx_config_is_valid_and_listens_on_the_node_address(lab: Lab, lab_node: str) -> None:
    node = lab.node(lab_node)
    proc = lab.exec(node, ["nginx", "-t"])
    assert proc.returncode == 0, proc.stderr
    # By name: once funops has a site on this address, that site is the default server.
    assert http_get(f"http://{node.address}/funops-lab", host=node.name) == (200, f"{node.name}\n")


@pytest.fixture
def smoke_unit(lab: Lab, lab_node: str) -> Iterator[Node]:
    node = lab.node(lab_node)
    yield node
    lab.exec(
        node,
        "systemctl disable --now lab-smoke-http.service; rm -f /etc/systemd/system/lab-smoke-http.service",
    )
    lab.exec(node, "systemctl daemon-reload")


def test_a_systemd_unit_can_be_installed_and_started(lab: Lab, smoke_unit: Node) -> None:
    node = smoke_unit
    unit = (
        "[Unit]\nDescription=lab smoke test\n[Service]\n"
        f"ExecStart=/usr/bin/python3 -m http.server --bind {node.address} 9100 --directory /etc/funops-lab\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    install = (
        f"printf %s {shlex.quote(unit)} > /etc/systemd/system/lab-smoke-http.service"
        " && systemctl daemon-reload && systemctl enable --now lab-smoke-http.service"
    )
    proc = ssh(lab, node, "root", install)
    assert proc.returncode == 0, proc.stderr
    status, body = wait_http(f"http://{node.address}:9100/node.env")
    assert status == 200
    assert f"FUNOPS_LAB_ADDRESS={node.address}" in body
    assert lab.exec(node, ["systemctl", "is-active", "lab-smoke-http.service"]).stdout.strip() == "active"


@pytest.fixture
def testapp_node(lab: Lab, lab_node: str) -> Iterator[Node]:
    node = lab.node(lab_node)
    yield node
    lab.exec(node, "docker rm -f smoke-testapp-v1 smoke-testapp-v3")


def test_the_test_app_runs_in_the_nodes_docker_from_the_local_registry(lab: Lab, testapp_node: Node) -> None:
    node = testapp_node
    for version, port in (("v1", 9201), ("v3", 9203)):
        run = (
            f"docker run -d --name smoke-testapp-{version} --network host"
            f" -e BIND={node.address} -e PORT={port} -e SMOKE=yes {REGISTRY_APP}:{version}"
        )
        proc = ssh(lab, node, "root", run)
        assert proc.returncode == 0, proc.stderr
    base = f"http://{node.address}:9201"
    assert wait_http(f"{base}/health") == (200, "ok")
    assert http_get(f"{base}/version") == (200, "v1")
    assert http_get(f"{base}/") == (200, "testapp v1")
    assert "SMOKE=yes" in http_get(f"{base}/env")[1].splitlines()
    status, _ = wait_http(f"http://{node.address}:9203/health")
    assert status == 500
