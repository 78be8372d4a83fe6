"""Task planning as data (issue 12; pyinfra's tests/operations/*.json, Kamal's command tests): a node's
desired resources, its live facts and its state file in, the typed tasks out — for every kind and
each edge the executor handles. One JSON file per case under task_fixtures/<kind>/:

    {"desired": [resource...], "facts": {kind: {name: facts}}, "state": {...},
     "apps": {app: placement...}, "changes": [task...], "checks": [task...], "gated": [[task...]],
     "housekeeping": [task...]}

A task is written as {"task": "StartUnit", field: value...} (bytes as their sha256, sets sorted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from funops import kinds
from funops.diff.differ import diff_node
from funops.gather.probe import LiveFacts
from funops.model.inventory import Node
from funops.plan.taskplan import plan_node
from funops.resources import AppPlacement, NodeDesired, Resource
from funops.tasks.model import HealthProbe, Task

FIXTURES = Path(__file__).parent / "task_fixtures"
CASES = sorted(FIXTURES.rglob("*.json"))
STATE_DIR = "/var/lib/funops"


def as_data(task: Task) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return "sha256:" + hashlib.sha256(value).hexdigest()
        if isinstance(value, frozenset | set):
            return sorted(plain(v) for v in value)
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, HealthProbe):
            return value.type
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    fields = {f.name: plain(getattr(task, f.name)) for f in dataclasses.fields(task)}
    return {"task": type(task).__name__, **{k: v for k, v in fields.items() if v is not None and v != ""}}


def resource(data: dict[str, Any]) -> Resource:
    content = data.pop("content", None)
    rid = data["id"]
    return Resource(
        kind=kinds.kind_of(rid).name, order=data.pop("order", 10),
        content=content.encode() if content is not None else None, **data,
    )  # fmt: skip


def planned(case: dict[str, Any]) -> dict[str, Any]:
    desired = NodeDesired(Node(name="n1", address="127.0.0.1"))
    desired.resources = [resource(dict(r)) for r in case.get("desired", [])]
    desired.sort()
    for app, placement in case.get("apps", {}).items():
        desired.apps[app] = AppPlacement(app=app, **placement)
    facts = LiveFacts(live=case.get("facts", {}), state=case.get("state"))
    diff = diff_node(desired, facts)
    tasks = plan_node(
        desired, diff, facts.node_state, state_dir=STATE_DIR, strategies={},
        cleanup_images=set(case.get("cleanupImages", [])), records=[],
    )  # fmt: skip
    return {
        "changes": [as_data(t) for t in tasks.changes],
        "checks": [as_data(t) for t, _ in tasks.checks],
        "gated": [[as_data(t) for t in group.tasks] for group in tasks.gated],
        "undo": [[as_data(t) for t in group.undo] for group in tasks.gated],
        "housekeeping": [as_data(t) for t in tasks.housekeeping(facts.node_state)],
    }


@pytest.mark.parametrize("path", CASES, ids=[str(p.relative_to(FIXTURES)) for p in CASES])
def test_task_planning(path: Path) -> None:
    case = json.loads(path.read_text())
    got = planned(case)
    expected = {key: case[key] for key in got if key in case}
    assert {key: got[key] for key in expected} == expected


def test_every_kind_has_task_planning_fixtures() -> None:
    covered = {p.parent.name for p in CASES}
    assert set(kinds.NAMES) <= covered, f"no task_fixtures/<kind>/ for {set(kinds.NAMES) - covered}"


def test_a_units_and_a_jobs_daemon_reloads_are_one_for_all_their_unit_files() -> None:
    from funops.kinds.base import DAEMON, START, Step
    from funops.plan.taskplan import _one_reload
    from funops.tasks import model as m

    unit = Step(DAEMON, m.DaemonReload(("/etc/systemd/system/web.service",)))
    start = Step(START, m.StartUnit("web.service", restart=True))
    job = Step(DAEMON, m.DaemonReload(("/etc/systemd/system/r.service", "/etc/systemd/system/r.timer")))
    joined = m.DaemonReload(tuple(sorted([*unit.task.unit_files, *job.task.unit_files])))
    assert _one_reload([unit, start, job]) == [start, Step(DAEMON, joined)]
    assert _one_reload([unit, start]) == [unit, start]
