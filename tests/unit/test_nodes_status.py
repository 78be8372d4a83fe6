"""`funops nodes` (issue 13) on the bundled example's local nodes: one row per node, in JSON too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def funops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args], capture_output=True, text=True, timeout=120
    )


def test_nodes_lists_every_node_with_its_facts(example: Path) -> None:
    for k in (1, 2, 3):  # a local node's root exists once applied
        (example / ".funops" / "nodes" / f"node{k}").mkdir(parents=True, exist_ok=True)
    done = funops("nodes", "-C", str(example), "-o", "json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["nodes"]
    assert [r["name"] for r in rows] == ["node1", "node2", "node3"]
    for row in rows:
        assert row["reachable"] and row["transport"] == "local" and row["error"] is None
        assert 0 < row["diskFreePct"] <= 100 and row["agent"] is None
    text = funops("nodes", "-C", str(example))
    assert text.returncode == 0 and "node3" in text.stdout


def test_an_unreachable_node_is_exit_4_with_its_reason(example: Path) -> None:
    inventory = example / "inventory" / "zz-gone.yaml"
    inventory.write_text("nodes:\n  - {name: gone, address: 127.0.3.250, port: 1, transport: ssh}\n")
    done = funops("nodes", "-C", str(example), "-o", "json")
    assert done.returncode == 4
    gone = next(r for r in json.loads(done.stdout)["nodes"] if r["name"] == "gone")
    assert not gone["reachable"] and "gone" in gone["error"]
