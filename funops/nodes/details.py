"""`funops details`: every app on every node in one view — the version running and the one wanted,
its release, its share of the app's traffic (the canary split), the state of its unit or container
and how long it has been up. One plan's gather (one round trip per node), nothing changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..load.project import Project
from ..model.canary import wanted_versions
from ..plan.planner import Plan, make_plan
from ..state.node_state import NodeState
from ..transports import Transport


@dataclass
class AppOnNode:
    app: str
    node: str
    version: str | None  # running, as the node's state file records it
    wanted: str | None  # what the repo places there
    release: str | None  # the id of its last release on the node (web-3)
    share: float | None  # percent of the app's traffic this instance takes (None: not routed by weight)
    state: str  # active, failed, running, exited…, missing; unreachable
    started: str | None  # ISO time the unit or container last started
    uptime_seconds: int | None
    pending: bool  # the plan has changes for this app on this node

    def to_json(self) -> dict[str, Any]:
        keys = {"uptime_seconds": "uptimeSeconds"}
        return {keys.get(k, k): v for k, v in self.__dict__.items()}


def details(
    project: Project, connect: Callable[[str], Transport], nodes: list[str] | None = None,
    apps: set[str] | None = None, now: dt.datetime | None = None,
) -> list[AppOnNode]:  # fmt: skip
    plan = make_plan(project, nodes, connect)
    now = now or dt.datetime.now(dt.UTC)
    rows = []
    for node in plan.doc.targets:
        g = plan.gathered[node]
        nd = plan.desired.nodes[node]
        node_state = g.facts.node_state if g.facts and g.facts.state else None
        recorded = node_state.apps if node_state else {}
        for app in sorted(set(nd.apps) | set(recorded)):
            if apps is not None and app not in apps:
                continue
            placement, record = nd.apps.get(app), recorded.get(app)
            state, started = _instance(plan, node, app)
            up = int((now - started).total_seconds()) if started else None
            rows.append(
                AppOnNode(
                    app=app,
                    node=node,
                    version=record.version if record else None,
                    wanted=placement.version if placement else None,
                    release=_last_release(node_state, app),
                    share=_share(plan, app, node),
                    state=state,
                    started=started.isoformat(timespec="seconds") if started else None,
                    uptime_seconds=up if up is None or up >= 0 else 0,
                    pending=any(
                        c.owner.app == app for c in (plan.diffs[node].pending if node in plan.diffs else [])
                    ),
                )
            )
    return rows


def _last_release(state: NodeState | None, app: str) -> str | None:
    records = state.releases.get(app) if state else None
    return records[-1].id if records else None


def _share(plan: Plan, app: str, node: str) -> float | None:
    """The percent of the app's requests this node takes: its version's canary percent, split over
    the nodes running that version (as the compiler weighs the upstream servers)."""
    versions = plan.desired.versions.get(app, {})
    if node not in versions or not plan.project.apps[app].spec.port:
        return None
    percent = {
        v.version: v.percent for v in wanted_versions(plan.project.apps[app], plan.project.release_for(app))
    }
    peers = sum(1 for v in versions.values() if v == versions[node])
    return round(percent.get(versions[node], 0) / peers, 1)


def _instance(plan: Plan, node: str, app: str) -> tuple[str, dt.datetime | None]:
    g = plan.gathered[node]
    if g.facts is None:
        return "unreachable", None
    placement = plan.desired.nodes[node].apps.get(app)
    unit = placement.unit if placement else f"{app}.service"
    container = placement.container if placement else app
    if container and (info := g.facts.live.get("container", {}).get(container)):
        return str(info.get("status") or "?"), _iso(info.get("startedAt"))
    if unit and (info := g.facts.live.get("unit", {}).get(unit)) and info.get("LoadState") != "not-found":
        return str(info.get("ActiveState") or "?"), _systemd_time(info.get("ActiveEnterTimestamp"))
    if g.facts.files_only:
        return "not read (local node)", None
    return "missing", None


def _iso(value: Any) -> dt.datetime | None:
    if not value or str(value).startswith("0001-"):
        return None
    try:  # docker: 2026-12-06T22:30:01.123456789Z (more digits than Python reads)
        head = str(value).removesuffix("Z").partition(".")[0]
        return dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _systemd_time(value: Any) -> dt.datetime | None:
    """systemd's `Sun 2026-12-06 22:30:01 UTC` (nodes keep UTC; another zone is not guessed)."""
    parts = str(value or "").split()
    if len(parts) != 4 or parts[3] != "UTC":
        return None
    try:
        return dt.datetime.fromisoformat(f"{parts[1]}T{parts[2]}").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
