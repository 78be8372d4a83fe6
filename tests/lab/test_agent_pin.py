"""Issue 28: `ssh.strictHostKeyChecking: false` does not turn the agent's certificate pin into trust on
first use. Over an SSH connection whose host key known_hosts does not hold, `agent install` pins
nothing new: a first pin is refused before the node changes, a pin already there stays enforced."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import Lab

from .fleet import AGENT_PORT, funops, make_repo, reset, set_transport

CERT_FILES = "/etc/funops-agent/tls/agent.crt /etc/funops-agent/tls/agent.key"


@pytest.fixture
def repo(lab: Lab, tmp_path: Path) -> Path:
    reset(lab)
    repo = make_repo(lab, tmp_path / "repo")
    set_transport(repo, "ssh")  # agent: sections; the install goes over ssh
    return repo


def _unverified_ssh(repo: Path, tmp_path: Path) -> None:
    """known_hosts without the node's key, and strictHostKeyChecking: false."""
    (tmp_path / "empty_known_hosts").write_text("")
    path = repo / "inventory" / "lab.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["defaults"]["ssh"].update(
        knownHostsFile=str(tmp_path / "empty_known_hosts"), strictHostKeyChecking=False
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _pins(repo: Path) -> str:
    path = repo / "agent_known_hosts"
    return path.read_text() if path.exists() else ""


def test_no_first_pin_over_unverified_ssh(lab: Lab, repo: Path, tmp_path: Path) -> None:
    lab.exec("node1", f"systemctl stop funops-agent; rm -f {CERT_FILES}")
    _unverified_ssh(repo, tmp_path)
    done = funops(repo, "agent", "install", "node1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "node node1: its SSH host key is not in known_hosts" in done.stderr
    assert "nothing was pinned" in done.stderr and "funops agent install node1" in done.stderr
    assert _pins(repo) == ""
    assert lab.exec("node1", f"ls {CERT_FILES} 2>/dev/null | wc -l").stdout.strip() == "0"  # untouched


def test_a_pin_made_over_verified_ssh_stays_enforced(lab: Lab, repo: Path, tmp_path: Path) -> None:
    first = funops(repo, "agent", "install", "node1")  # verified: the lab's known_hosts
    assert first.returncode == 0, first.stdout + first.stderr
    pinned = _pins(repo)
    address = lab.nodes[0].address
    assert f"{address}:{AGENT_PORT} sha256:" in pinned
    _unverified_ssh(repo, tmp_path)
    again = funops(repo, "agent", "install", "node1")  # the same certificate: nothing to trust anew
    assert again.returncode == 0, again.stdout + again.stderr
    lab.exec("node1", f"rm -f {CERT_FILES}", check=True)  # the node makes a new one at the install
    replaced = funops(repo, "agent", "install", "node1")
    assert replaced.returncode == 1, replaced.stdout + replaced.stderr
    assert "a new agent certificate" in replaced.stderr and "nothing was pinned" in replaced.stderr
    assert _pins(repo) == pinned
