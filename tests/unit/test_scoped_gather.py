"""What a plan of some apps reads beyond their desired resources: only what it may delete, the
managed resources of those apps (diff_node deletes nothing else), never the other apps' (a
`restart web` read every unit and container of its nodes twice, once more under its locks)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from funops.gather.gatherer import NodeGather, gather
from funops.model.inventory import Node
from funops.node.probe import MARK
from funops.resources import NodeDesired
from funops.tasks.model import Probe
from funops.tasks.results import CommandResult

from .test_plan import funops

MANAGED = {
    "file:/srv/web/old.html": {"owner": "app/web", "kind": "file"},
    "unit:api.service": {"owner": "app/api", "kind": "unit"},
    "file:/etc/nginx/conf.d/site.conf": {"owner": "ingress/site", "kind": "file"},
}


class _Node:
    """Answers every probe with a state managing MANAGED; keeps the ids each probe asked for."""

    path = staticmethod(lambda p: p)

    def __init__(self) -> None:
        self.asked: list[set[str]] = []

    def call(self, task: Probe, timeout: float | None = None) -> CommandResult:
        self.asked.append(set(task.ids))
        state = base64.b64encode(json.dumps({"formatVersion": 1, "managed": MANAGED}).encode()).decode()
        return CommandResult(0, f"{MARK}state\npresent\n{state}\n{MARK}end\n".encode(), b"")


def _gather(apps: set[str] | None) -> tuple[_Node, NodeGather]:
    node = _Node()
    desired = {"n1": NodeDesired(node=Node(name="n1", address="127.0.0.1"))}
    return node, gather(desired, lambda _: node, "/var/lib/funops", 1, apps=apps)["n1"]  # type: ignore[arg-type,return-value]


def test_a_plan_of_every_app_follows_every_managed_resource() -> None:
    node, g = _gather(None)
    assert node.asked == [set(), set(MANAGED)] and g.probed == set(MANAGED)


def test_a_plan_of_one_app_follows_only_that_apps_managed_resources() -> None:
    node, g = _gather({"web"})
    assert node.asked == [set(), {"file:/srv/web/old.html"}] and g.probed == {"file:/srv/web/old.html"}
    node, g = _gather({"docs"})  # nothing of its own managed there: one probe
    assert node.asked == [set()] and g.probed == set()


def _deletes(example: Path, *args: str) -> set[str]:
    done = funops("plan", "-C", str(example), "-o", "json", *args)
    assert done.returncode in (0, 2), done.stderr
    doc = json.loads(done.stdout)
    return {c["id"] for n in doc["nodes"] for c in n["changes"] if c["action"] == "delete"}


def test_a_plan_of_one_app_still_deletes_what_that_app_no_longer_has(example: Path) -> None:
    done = funops("apply", "-C", str(example), "--auto-approve", "--allow-dirty")
    assert done.returncode == 0, done.stdout + done.stderr
    web = example / "manifests" / "web.yaml"
    web.write_text(web.read_text().replace('    - path: /srv/web/health\n      content: "ok\\n"\n', ""))
    assert "file:/srv/web/health" in _deletes(example)
    assert "file:/srv/web/health" in _deletes(example, "--app", "web")
    assert _deletes(example, "--app", "api") == set()
