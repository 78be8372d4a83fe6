"""`funops audit`: the journal as who / when / what / result, --since, -o json."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from funops.apply import journal
from funops.apply.audit import rows, since_cutoff
from funops.errors import FunopsError

from .test_plan import funops

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
ENTRIES = [
    {"event": "apply", "kind": "deploy", "who": "ann@ci", "when": "2026-12-01T08:00:00Z", "id": "a1",
     "revision": {"commit": "0123456789abcdef", "dirty": False}, "releases": {"web": "web-3"},
     "halted": True, "exitCode": 3, "nodes": {"node1": {"status": "failed"}, "node2": {"status": "skipped"}}},
    {"event": "exec", "who": "bob@laptop", "when": "2026-12-06T11:30:00Z", "app": "web",
     "command": ["uptime"], "exitCode": 0, "nodes": {"node1": {"status": "ok", "exitCode": 0}}},
    {"event": "lock-release", "who": "bob@laptop", "when": "2026-12-06T11:45:00Z", "forced": True,
     "exitCode": 0, "nodes": {"node2": {"status": "released"}}},
]  # fmt: skip


def test_rows_say_who_when_what_and_result() -> None:
    apply_, exec_, release = rows(ENTRIES)
    assert (apply_.who, apply_.what, apply_.result) == (
        "ann@ci",
        "deploy of 0123456789ab: web-3",
        "failed (halted)",
    )
    assert apply_.nodes == {"node1": "failed", "node2": "skipped"}
    assert (exec_.what, exec_.result) == ("exec web -- uptime", "ok")
    assert (release.what, release.nodes) == ("lock release --force", {"node2": "released"})


@pytest.mark.parametrize(
    ("since", "kept"), [("1h", 2), ("20m", 1), ("7d", 3), ("2026-12-06", 2), ("2026-12-06T11:40", 1)]
)
def test_since(since: str, kept: int) -> None:
    assert len(rows(ENTRIES, since_cutoff(since, NOW))) == kept


def test_a_bad_since_says_the_forms() -> None:
    with pytest.raises(FunopsError, match="30m, 2h or 7d"):
        since_cutoff("yesterday")


def test_audit_json_and_text(example: Path) -> None:
    path = example / ".funops" / "journal.jsonl"
    assert json.loads(funops("audit", "-C", str(example), "-o", "json").stdout)["entries"] == []
    for entry in ENTRIES:
        journal.append(path, entry)
    done = funops("audit", "-C", str(example), "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["formatVersion"] == 1 and [e["event"] for e in doc["entries"]] == [
        "apply",
        "exec",
        "lock-release",
    ]
    text = funops("audit", "-C", str(example))
    assert "ann@ci" in text.stdout and "lock release --force" in text.stdout
    assert funops("audit", "-C", str(example), "--since", "soon").returncode == 1


def test_the_readme_names_every_command() -> None:
    """The README's command list follows `funops --help` (`version` is `funops --version` there)."""
    from funops.cli.main import app, command_name

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    names = [command_name(c) for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert [n for n in names if f"funops {n}" not in readme and n != "version"] == []
