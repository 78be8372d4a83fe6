"""`funops lock status|release` on the local transport: a lock planted as apply/lock.py writes it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from funops.apply import journal

from .test_plan import funops

TOKEN = "0123456789abcdef0123456789abcdef"


def plant(example: Path, node: str, expires_in: int) -> Path:
    lock = example / ".funops" / "nodes" / node / "var" / "lib" / "funops" / "lock"
    lock.mkdir(parents=True)
    started = time.time() - 120
    info = {"holder": "ci@elsewhere", "pid": 4242, "started": started, "token": TOKEN}
    (lock / "info").write_text(json.dumps(info))
    (lock / "token").write_text(TOKEN)
    (lock / "expires").write_text(str(int(time.time()) + expires_in))
    return lock


def test_status_shows_the_holder_age_and_expiry(example: Path) -> None:
    plant(example, "node2", 600)
    done = funops("lock", "status", "-C", str(example), "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["formatVersion"] == 1
    by = {n["node"]: n for n in doc["nodes"]}
    assert by["node1"]["locked"] is False and by["node3"]["locked"] is False
    held = by["node2"]
    assert held["locked"] and held["fresh"] and held["holder"] == "ci@elsewhere" and held["pid"] == 4242
    assert held["ageSeconds"] >= 119 and 0 < held["expiresInSeconds"] <= 600
    assert "token" not in held and TOKEN not in done.stdout
    text = funops("lock", "status", "-C", str(example), "--node", "node[23]")
    assert "node2" in text.stdout and "held" in text.stdout and "node1" not in text.stdout


def test_a_fresh_lock_is_released_only_with_force_and_journaled(example: Path) -> None:
    lock = plant(example, "node2", 600)
    refused = funops("lock", "release", "-C", str(example), "node2")
    assert refused.returncode == 1 and "--force" in refused.stderr and lock.is_dir()
    done = funops("lock", "release", "-C", str(example), "node2", "--force")
    assert done.returncode == 0, done.stderr
    assert not lock.exists()
    (entry,) = journal.entries(example / ".funops" / "journal.jsonl")
    assert entry["event"] == "lock-release" and entry["forced"] is True
    assert entry["nodes"]["node2"]["holder"] == "ci@elsewhere"


def test_an_expired_lock_is_released_without_force(example: Path) -> None:
    lock = plant(example, "node3", -5)
    status = json.loads(funops("lock", "status", "-C", str(example), "-o", "json", "-n", "node3").stdout)
    assert status["nodes"][0]["fresh"] is False
    done = funops("lock", "release", "-C", str(example), "node3")
    assert done.returncode == 0, done.stderr
    assert not lock.exists()
    again = funops("lock", "release", "-C", str(example), "node3")
    assert again.returncode == 1 and "holds no lock" in again.stderr
