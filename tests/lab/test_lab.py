"""The lab itself: the network rule, its generated files, idempotent `up`, stop/start of a node."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import yaml

import lab as labkit
from lab import Lab, LabError

WILDCARDS = {"0.0.0.0", "*", "[::]", "::"}
LAB_PROCESSES = {"dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-registry"}


def listeners() -> list[tuple[str, str, list[int]]]:
    """(local address, port, pids) of every listening TCP and UDP socket on the host."""
    out = subprocess.run(["ss", "-H", "-ltunp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        local = fields[4]
        address, _, port = local.rpartition(":")
        address = address.split("%")[0]  # "0.0.0.0%lo" style scoped binds
        found.append((address, port, [int(p) for p in re.findall(r"pid=(\d+)", line)]))
    return found


def belongs_to_lab(pid: int) -> bool:
    """Processes in another PID namespace run in (lab) containers; the engine and registry serve the lab."""
    try:
        if os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid"):
            return True
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() in LAB_PROCESSES
    except OSError:
        return False


def test_nothing_of_the_lab_listens_on_a_wildcard_address(lab: Lab) -> None:
    all_listeners = listeners()
    wild = [(a, p, pids) for a, p, pids in all_listeners if a in WILDCARDS and any(map(belongs_to_lab, pids))]
    assert wild == []
    bound = {(a, p) for a, p, _ in all_listeners}
    for node in lab.nodes:  # and the nodes do listen, each on its own address
        assert (node.address, "22") in bound
        assert (node.address, "80") in bound
    assert ("127.0.0.1", "5000") in bound  # the registry


def test_inventory_and_known_hosts_describe_the_nodes(lab: Lab) -> None:
    inventory = yaml.safe_load(lab.inventory_path.read_text())
    assert inventory["defaults"] == {
        "user": "root",
        "port": 22,
        "transport": "ssh",
        "ssh": {"identityFile": str(lab.key_path), "knownHostsFile": str(lab.known_hosts_path)},
    }
    assert [(n["name"], n["address"], n["bindAddress"], n["labels"]) for n in inventory["nodes"]] == [
        (n.name, n.address, n.address, {"role": "edge" if n.index == 1 else "app", "lab": "true"})
        for n in lab.nodes
    ]
    known = lab.known_hosts_path.read_text().splitlines()
    for node in lab.nodes:
        real = lab.exec(node, "cat /etc/ssh/ssh_host_ed25519_key.pub", check=True).stdout.split()[:2]
        assert f"{node.address} {real[0]} {real[1]}" in known


def test_up_again_with_the_same_size_changes_nothing(lab: Lab) -> None:
    files = [lab.inventory_path, lab.known_hosts_path]
    before = [p.stat().st_mtime_ns for p in files]
    ids = {n.name: lab.exec(n, "cat /etc/machine-id").stdout for n in lab.nodes}
    started = time.monotonic()
    again = labkit.up(len(lab.nodes))
    assert time.monotonic() - started < 20
    assert again.nodes == lab.nodes
    assert [p.stat().st_mtime_ns for p in files] == before
    assert {n.name: lab.exec(n, "cat /etc/machine-id").stdout for n in lab.nodes} == ids  # same containers


def test_a_stopped_node_comes_back_with_the_same_host_keys(lab: Lab) -> None:
    node = lab.nodes[-1]
    keys = lab.exec(node, "cat /etc/ssh/ssh_host_*_key.pub", check=True).stdout
    lab.stop_node(node)
    assert lab.ssh(node, "true").returncode != 0
    # The engine's typed error (409: not running), not a docker CLI message to parse.
    with pytest.raises(LabError, match=f"exec on {node.name}: .*is not running"):
        lab.exec(node, "true")
    lab.start_node(node)
    assert lab.exec(node, "cat /etc/ssh/ssh_host_*_key.pub", check=True).stdout == keys
    proc = lab.ssh(node, "systemctl is-system-running")
    assert (proc.returncode, proc.stdout.strip()) == (0, "running")


def test_nginx_refuses_a_site_that_would_listen_beyond_the_node_address(lab: Lab) -> None:
    node = lab.nodes[0]
    good = f"server {{ listen {node.address}:80; server_name good.test; return 200 'good\\n'; }}\n"
    try:
        lab.exec(node, ["tee", "/etc/nginx/conf.d/lab-good.conf"], input=good, check=True)
        assert lab.exec(node, "systemctl reload nginx").returncode == 0
        for bad in (
            "server { server_name bad.test; }",
            "server { listen 8081; }",
            "server { listen [::]:80; }",
        ):
            lab.exec(node, ["tee", "/etc/nginx/conf.d/lab-bad.conf"], input=bad + "\n", check=True)
            proc = lab.exec(node, "systemctl reload nginx")
            assert proc.returncode != 0, bad
            assert lab.exec(node, ["systemctl", "is-active", "nginx"]).stdout.strip() == "active"
        wild = [(a, p) for a, p, _ in listeners() if a in WILDCARDS and p in ("80", "8081")]
        assert wild == []
    finally:
        lab.exec(node, "rm -f /etc/nginx/conf.d/lab-good.conf /etc/nginx/conf.d/lab-bad.conf")
        lab.exec(node, "systemctl reload nginx")
