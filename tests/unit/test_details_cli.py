"""`funops details` on the local transport (states and uptimes from real units: the lab test)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from funops.nodes.details import _iso, _systemd_time

from .test_plan import funops


def test_details_json_has_every_app_on_every_node(example: Path) -> None:
    assert funops("apply", "-C", str(example), "--auto-approve", "--allow-dirty").returncode == 0
    done = funops("details", "-C", str(example), "-o", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["formatVersion"] == 1
    rows = {(r["app"], r["node"]): r for r in doc["apps"]}
    assert {n for a, n in rows if a == "web"} == {"node1", "node2", "node3"}
    assert rows[("api", "node2")]["share"] == 90 and rows[("api", "node3")]["share"] == 10  # the canary
    assert rows[("api", "node3")]["version"] == rows[("api", "node3")]["wanted"] == "v2"
    assert rows[("web", "node1")]["release"] == "web-1" and not rows[("web", "node1")]["pending"]
    only = json.loads(funops("details", "-C", str(example), "-o", "json", "--app", "api").stdout)
    assert {r["app"] for r in only["apps"]} == {"api"}


def test_start_times_as_systemd_and_docker_print_them() -> None:
    utc = dt.UTC
    assert _systemd_time("Sun 2026-12-06 22:30:01 UTC") == dt.datetime(2026, 12, 6, 22, 30, 1, tzinfo=utc)
    assert _systemd_time("") is None and _systemd_time("Sun 2026-12-06 22:30:01 CET") is None
    assert _iso("2026-12-06T22:30:01.123456789Z") == dt.datetime(2026, 12, 6, 22, 30, 1, tzinfo=utc)
    assert _iso("0001-01-01T00:00:00Z") is None
