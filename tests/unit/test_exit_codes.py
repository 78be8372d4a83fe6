"""Issue 11 item 9: the exit-code contract holds for usage errors, bad saved plans and --out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from funops.errors import FunopsError
from funops.plan.saved import read_saved_plan


def funops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "funops", *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("plan", "--bogus"), ("plan", "-o", "xml"), ("drift", "--bogus"), ("bogus",), ("drift", "ack")],
)
def test_usage_errors_exit_1_not_2(args: tuple[str, ...]) -> None:
    done = funops(*args)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr


def saved_doc(**over: object) -> dict:
    node = {"name": "node1", "address": "127.0.1.1", "transport": "local", "reachable": True,
            "error": None, "changes": [], "unchanged": 0, "handlers": [], "owed": [], "facts": {},
            "observed": "x"}  # fmt: skip
    doc = {
        "formatVersion": 1, "kind": "plan", "project": "demo",
        "revision": {"commit": "c1", "dirty": False, "ref": "working tree"},
        "createdAt": "2026-01-01T00:00:00+00:00", "targets": ["node1"],
        "summary": {"create": 0, "update": 0, "delete": 0, "unchanged": 0, "owed": 0, "nodes": 1,
                    "nodesChanged": 0, "nodesUnreachable": 0},
        "placements": {}, "versions": {}, "nodes": [node],
    }  # fmt: skip
    return doc | over


@pytest.mark.parametrize(
    ("over", "error"),
    [
        (
            {"createdAt": "2999-01-01T00:00:00+00:00"},
            "createdAt: '2999-01-01T00:00:00+00:00' is in the future",
        ),
        ({"createdAt": "yesterday"}, "createdAt: 'yesterday' is not an ISO 8601 time"),
        ({"createdAt": "2026-01-01T00:00:00"}, "createdAt: '2026-01-01T00:00:00' has no time zone"),
        ({"targets": ["node1", "node2"]}, "nodes: the plan covers 1 node(s) but targets 2"),
    ],
)
def test_a_doubtful_saved_plan_is_refused_with_a_message(tmp_path: Path, over: dict, error: str) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(saved_doc(**over)))
    with pytest.raises(FunopsError) as raised:
        read_saved_plan(path)
    assert error in str(raised.value)
    done = funops("apply", str(path), "-C", str(tmp_path))
    assert done.returncode == 1 and error in done.stderr and "Traceback" not in done.stderr


def test_plan_out_to_an_unwritable_path_is_a_clear_error(example: Path, tmp_path: Path) -> None:
    done = funops("plan", "-C", str(example), "--out", str(tmp_path / "no" / "such" / "dir" / "plan.json"))
    assert done.returncode == 1 and "--out" in done.stderr and "cannot write the plan there" in done.stderr
    assert "Traceback" not in done.stderr
