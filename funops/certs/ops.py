"""`funops certs`: the certificates as the edge nodes serve them, and the two plans that change only
certificates — `certs renew` (what is due: an order, or a deploy to a mismatched node) and
`certs rollback` (each node's `current` back to its previous version, without the CA). Any other
pending change of the repo stays pending: a cron job renewing certificates deploys nothing else."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..errors import FunopsError
from ..plan.planner import Intent, Plan, make_plan, plan_from
from ..transports import Transport

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..load.project import Project


def only_certificates(plan: Plan, pinned: dict[str, dict[str, str]] | None = None) -> Plan:
    """The plan again with the certificates' changes only: every other resource that would change is
    left out of what apply converges and records; no app is touched or recorded."""
    desired = plan.desired
    for name, nd in desired.nodes.items():
        diff = plan.diffs.get(name)
        unchanged = {c.id for c in diff.changes if c.action == "unchanged"} if diff else set()
        nd.resources = [r for r in nd.resources if r.kind == "cert" or r.id in unchanged]
        nd.apps = {}
    intent = Intent(kind="certificates", apps=set(), certificates=pinned or {})
    return plan_from(plan.project, plan.doc.targets, desired, plan.gathered, intent)


def plan_rollback(
    project: Project, name: str, connect: Callable[[str], Transport], targets: list[str] | None = None
) -> Plan:
    """The plan switching every edge node of certificate `name` back to its previous version."""
    if name not in project.certificates:
        raise FunopsError(
            f"unknown Certificate {name!r} ({', '.join(sorted(project.certificates)) or 'none'})"
        )
    plan = make_plan(project, targets, connect)
    return only_certificates(plan, {name: previous_versions(plan, name)})


def previous_versions(plan: Plan, name: str) -> dict[str, str]:
    """node → the version a rollback of certificate `name` switches it to: the newest kept version
    that is not the current one."""
    found = {}
    for node, g in sorted(plan.gathered.items()):
        info = g.facts.live["cert"].get(name) if g.facts is not None else None
        if info is None:
            continue
        older = [v for v in info.get("versions", []) if v != info.get("link")]
        if not older:
            raise FunopsError(f"certificate {name}: {node} keeps no version before {info.get('link')}")
        found[node] = older[0]
    if not found:
        raise FunopsError(f"certificate {name}: no node serves it")
    return found


def rows(plan: Plan, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Per certificate: names, issuer, what is due, and per node serial, expiry and days left."""
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for decision in plan.certificates:
        doc = decision.doc(now)
        doc["due"] = decision.action not in ("none", "rollback")
        out.append(doc)
    return out
