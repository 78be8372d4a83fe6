"""`ssh.client: openssh` against real nodes: the system's ssh, one master connection per node kept
between runs (ControlPersist). Plan and apply converge and no-op over it, a later run reuses the
masters, a killed master is replaced, and a host key that does not match known_hosts is refused as a
fresh connection would refuse it (never reusing a master made under another known_hosts)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from funops.model.inventory import Node
from funops.settings import SshSettings
from funops.transports import TransportError
from funops.transports.openssh import OpensshTransport, control_dir
from lab import Lab

from .fleet import FUNOPS, apply, funops, make_repo, reset
from .test_converge import deploy_inventory


@pytest.fixture(scope="module")
def runtime() -> Iterator[Path]:
    """Sockets of this module's own (a short private runtime dir), every master ended afterwards."""
    path = Path(tempfile.mkdtemp(prefix="fo-mux"))
    before = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = str(path)  # funops inherits it (fleet.funops passes os.environ)
    yield path
    for sock in (path / "funops-ssh").glob("*"):
        if sock.is_socket():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10
            )
    if before is None:
        del os.environ["XDG_RUNTIME_DIR"]
    else:
        os.environ["XDG_RUNTIME_DIR"] = before
    shutil.rmtree(path, ignore_errors=True)


def use_openssh(inventory: Path, **ssh: object) -> None:
    doc = yaml.safe_load(inventory.read_text())
    doc["defaults"]["ssh"].update({"client": "openssh", **ssh})
    inventory.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def repo(lab: Lab, runtime: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reset(lab)
    repo = make_repo(lab, tmp_path_factory.mktemp("mux") / "repo")
    use_openssh(repo / "inventory" / "lab.yaml", controlPersist=300)
    yield repo
    reset(lab)


def transport_of(repo: Path, name: str, inventory: str = "lab.yaml") -> OpensshTransport:
    doc = yaml.safe_load((repo / "inventory" / inventory).read_text())
    entry = next(n for n in doc["nodes"] if n["name"] == name)
    node = Node.model_validate({**doc["defaults"], **entry})
    return OpensshTransport(node, SshSettings(), repo)


def master_pid(transport: OpensshTransport) -> int | None:
    """The pid of the node's master (`ssh -O check`), None when there is none."""
    argv = transport.ssh_argv(control_dir())
    done = subprocess.run([*argv[:-2], "-O", "check", *argv[-2:]], capture_output=True, text=True, timeout=10)
    found = re.search(r"Master running \(pid=(\d+)\)", done.stderr)
    return int(found[1]) if done.returncode == 0 and found else None


def test_apply_converges_and_the_next_runs_reuse_the_masters(lab: Lab, repo: Path) -> None:
    assert funops(repo, "plan").returncode == 2
    code, _, err = apply(repo)
    assert code == 0, err
    masters = {n.name: master_pid(transport_of(repo, n.name)) for n in lab.nodes}
    assert None not in masters.values(), masters  # persisted after the run
    plan = funops(repo, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "no changes" in plan.stdout
    code, evs, err = apply(repo)
    assert code == 0, err
    assert [e for e in evs if e["event"] == "task"] == []  # a no-op
    assert {n.name: master_pid(transport_of(repo, n.name)) for n in lab.nodes} == masters


def test_a_killed_master_is_replaced_by_a_new_connection(lab: Lab, repo: Path) -> None:
    transport = transport_of(repo, "node1")
    old = master_pid(transport)
    assert old is not None
    os.kill(old, signal.SIGKILL)  # its socket stays behind, stale
    plan = funops(repo, "plan", "--node", "node1")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    new = master_pid(transport)
    assert new is not None and new != old


def test_a_changed_known_host_key_is_refused_despite_a_live_master(
    lab: Lab, repo: Path, tmp_path: Path
) -> None:
    assert master_pid(transport_of(repo, "node2")) is not None
    # node2's entries now hold node3's key: a fresh connection to node2 sees a changed host key
    lines = lab.known_hosts_path.read_text().splitlines()
    node2, node3 = lab.node("node2").address, lab.node("node3").address
    theirs = [line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[0] == node3]
    assert theirs
    changed = tmp_path / "known_hosts"
    kept = [line for line in lines if line.split(" ", 1)[0] != node2]
    changed.write_text("\n".join([*kept, *(f"{node2} {key}" for key in theirs)]) + "\n")
    inventory = repo / "inventory" / "lab.yaml"
    other = repo.parent / "changed-inventory.yaml"
    other.write_text(inventory.read_text().replace(str(lab.known_hosts_path), str(changed)))
    done = funops(repo, "plan", "--node", "node2", "--inventory", str(other))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"node node2: HOST KEY CHANGED for {node2}; refusing to connect" in done.stdout + done.stderr
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    other.write_text(inventory.read_text().replace(str(lab.known_hosts_path), str(empty)))
    done = funops(repo, "plan", "--node", "node2", "--inventory", str(other))
    assert done.returncode == 1
    assert f"unknown host key for {node2}:22; refusing to connect" in done.stdout + done.stderr
    assert funops(repo, "plan", "--node", "node2").returncode == 0  # the lab's known_hosts: as before


NEW_HOST_KEYS = """\
set -e
mkdir -p /root/hostkeys.saved && cp -p /etc/ssh/ssh_host_* /root/hostkeys.saved/
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -A
systemctl restart ssh
"""
OLD_HOST_KEYS = (
    "cp -p /root/hostkeys.saved/* /etc/ssh/ && rm -rf /root/hostkeys.saved && systemctl restart ssh"
)


def test_a_node_with_a_new_host_key_is_refused_once_its_master_is_gone(lab: Lab, repo: Path) -> None:
    transport = transport_of(repo, "node3")
    assert funops(repo, "plan", "--node", "node3").returncode == 0
    lab.exec("node3", NEW_HOST_KEYS, check=True)
    try:
        pid = master_pid(transport)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        done = funops(repo, "plan", "--node", "node3")
        assert done.returncode == 1, done.stdout + done.stderr
        address = lab.node("node3").address
        assert f"node node3: HOST KEY CHANGED for {address}; refusing to connect" in done.stdout + done.stderr
        assert master_pid(transport) is None
    finally:
        lab.exec("node3", OLD_HOST_KEYS, check=True)
    assert funops(repo, "plan", "--node", "node3").returncode == 0


def test_a_non_root_user_works_through_sudo(lab: Lab, repo: Path) -> None:
    done = funops(repo, "plan", "--inventory", str(deploy_inventory(repo)), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr  # it reads root-only files (the 0600 env file)


def test_exec_and_logs_go_over_the_master(lab: Lab, repo: Path) -> None:
    exec_ = [*FUNOPS, "-C", str(repo), "exec", "--node", "node1", "--", "sh", "-c", "echo hi; exit 3"]
    done = subprocess.run(exec_, capture_output=True, text=True, timeout=300)  # -C before `--`
    assert done.returncode == 3 and "node1: hi" in done.stdout, done.stdout + done.stderr
    logs = funops(repo, "logs", "web", "--node", "node2", "--lines", "3")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert "node2" in logs.stdout


def test_commands_over_a_live_master_start_no_ssh_client(
    lab: Lab, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = transport_of(repo, "node1")
    assert transport.run("true").exit_code == 0  # a master, made by the client if there was none
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    data = os.urandom(1 << 20)  # more than a pipe holds, both ways
    done = transport.run("sha256sum; head -c 200000 /dev/zero >&2; exit 5", stdin=data)
    assert done.exit_code == 5 and len(done.stderr) == 200000
    assert done.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    with pytest.raises(TransportError, match="node node1: connection lost: command timed out"):
        transport.run("sleep 30", timeout=1)
    assert transport.run("echo after").stdout == b"after\n"
    assert started == []
