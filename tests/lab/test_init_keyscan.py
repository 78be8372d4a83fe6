"""Issue 12: `funops init --host` against a real node: the fingerprints shown are ssh-keygen's, the
known_hosts it writes is what funops then trusts over ssh."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from lab import Lab

from .fleet import FUNOPS, funops


def test_init_scans_and_trusts_the_nodes_keys(lab: Lab, tmp_path: Path) -> None:
    node = lab.node("node1")
    repo = tmp_path / "repo"
    done = subprocess.run(
        [*FUNOPS, "init", str(repo), "--host", f"node1={node.address}", "--yes"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scanned = subprocess.run(
        ["ssh-keyscan", "-T", "5", node.address], capture_output=True, text=True, check=True
    ).stdout
    expected = subprocess.run(
        ["ssh-keygen", "-lf", "-"], input=scanned, capture_output=True, text=True, check=True
    ).stdout
    shown = set(re.findall(r"SHA256:[A-Za-z0-9+/]+", done.stdout))
    assert shown and shown == set(re.findall(r"SHA256:[A-Za-z0-9+/]+", expected))
    assert (repo / "known_hosts").read_text().split("\n")[0].startswith(node.address)
    assert funops(repo, "validate").returncode == 0

    # With the lab's key, plan reaches the node over ssh, strict on the scanned known_hosts.
    inventory = repo / "inventory" / "nodes.yaml"
    data = yaml.safe_load(inventory.read_text())
    assert data["defaults"]["ssh"] == {"knownHostsFile": "known_hosts"}
    data["defaults"]["ssh"]["identityFile"] = str(lab.key_path)
    inventory.write_text(yaml.safe_dump(data))
    plan = funops(repo, "plan")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "node1" in plan.stdout and "unit:hello.service" in plan.stdout


def test_answering_no_writes_nothing(lab: Lab, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    done = subprocess.run(
        [*FUNOPS, "init", str(repo), "--host", f"node1={lab.node('node1').address}"],
        input="n\n", capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SHA256:" in done.stdout and "not confirmed; nothing written" in done.stderr
    assert not repo.exists()
