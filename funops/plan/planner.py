"""load → compile → gather → diff → plan: the pure stages around one gather of the live world."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from ..compile.compiler import DesiredState, Facts, compile_project
from ..compile.placement import NodeCapacity
from ..diff.differ import Change, NodeDiff, diff_node
from ..errors import FunopsError
from ..gather.gatherer import NodeGather, gather
from ..load.project import Project
from ..redact import fingerprint
from ..state.node_state import NodeState
from ..transports import Connections, Transport
from .document import (
    ChangeDoc,
    FieldChangeDoc,
    NodeDoc,
    PlanDoc,
    RevisionDoc,
    SummaryDoc,
)


@dataclass
class Plan:
    project: Project
    desired: DesiredState
    gathered: dict[str, NodeGather]
    diffs: dict[str, NodeDiff]
    doc: PlanDoc


def make_plan(
    project: Project,
    targets: list[str] | None = None,
    connect: Callable[[str], Transport] | None = None,
) -> Plan:
    unknown = sorted(set(targets or []) - set(project.nodes))
    if unknown:
        raise FunopsError(f"unknown node(s): {', '.join(unknown)}")
    names = sorted(targets or project.nodes)
    connect = connect or Connections(project.nodes, project.settings, project.root)
    first = compile_project(project)
    wanted = {n: first.nodes[n] for n in names}
    gathered = gather(wanted, connect, project.settings.state_dir, project.settings.parallel)
    desired = compile_project(project, _facts(gathered))
    # Placement may move with live facts: probe again the nodes whose resources the first pass missed.
    again = {
        n: desired.nodes[n]
        for n, g in gathered.items()
        if g.reachable and {r.id for r in desired.nodes[n].resources} - g.probed
    }
    if again:
        gathered.update(gather(again, connect, project.settings.state_dir, project.settings.parallel))
    diffs = {n: diff_node(desired.nodes[n], g.facts) for n, g in gathered.items() if g.facts is not None}
    return Plan(project, desired, gathered, diffs, _document(project, names, desired, gathered, diffs))


def _facts(gathered: dict[str, NodeGather]) -> Facts:
    capacity = {}
    placements: dict[str, set[str]] = {}
    for name, g in gathered.items():
        if g.facts is None:
            continue
        capacity[name] = NodeCapacity(g.facts.disk_free_pct, g.facts.container_count)
        for app in NodeState.from_facts(g.facts.state).apps:
            placements.setdefault(app, set()).add(name)
    return Facts(capacity=capacity, placements={a: frozenset(n) for a, n in placements.items()})


def _change_doc(change: Change) -> ChangeDoc:
    def show(field: str, value: object) -> object:
        # Only the content hash of a secret can leak it (a guessable value); mode and owner cannot.
        return fingerprint(value) if change.secret and field == "sha256" and value is not None else value

    return ChangeDoc(
        id=change.id,
        kind=change.kind,
        owner=change.owner,
        action=change.action,  # type: ignore[arg-type]
        fields=[
            FieldChangeDoc(field=f.field, old=show(f.field, f.old), new=show(f.field, f.new))
            for f in change.fields
        ],
        handlers=list(change.handlers),
        secret=change.secret,
    )


def _document(
    project: Project,
    names: list[str],
    desired: DesiredState,
    gathered: dict[str, NodeGather],
    diffs: dict[str, NodeDiff],
) -> PlanDoc:
    nodes = []
    counts = {"create": 0, "update": 0, "delete": 0, "unchanged": 0, "owed": 0}
    for name in names:
        node = project.nodes[name]
        g = gathered[name]
        d = diffs.get(name)
        changes = d.pending if d else []
        for c in d.changes if d else []:
            counts[c.action] += 1
        counts["owed"] += len(d.owed) if d else 0
        facts = {"gatherSeconds": round(g.seconds, 3)}
        if g.facts:
            facts |= {
                "diskFreePct": g.facts.disk_free_pct,
                "containerCount": g.facts.container_count,
                "nginx": g.facts.nginx,
                "systemd": g.facts.systemd,
                "docker": g.facts.docker,
            }
        nodes.append(
            NodeDoc(
                name=name,
                address=node.address,
                transport=node.transport,
                reachable=g.reachable,
                error=g.error,
                changes=[_change_doc(c) for c in changes],
                unchanged=sum(1 for c in d.changes if c.action == "unchanged") if d else 0,
                handlers=d.handlers() if d and (changes or d.owed) else [],
                owed=d.owed if d else [],
                facts=facts,
            )
        )
    rev = project.revision
    return PlanDoc(
        project=project.settings.project,
        revision=RevisionDoc(commit=rev.commit, dirty=rev.dirty, ref=rev.ref),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        targets=names,
        summary=SummaryDoc(
            **counts,
            nodes=len(names),
            nodes_changed=sum(1 for n in nodes if n.changes or n.owed),
            nodes_unreachable=sum(1 for n in nodes if not n.reachable),
        ),
        placements={a: n for a, n in sorted(desired.placements.items())},
        versions={a: dict(sorted(v.items())) for a, v in sorted(desired.versions.items())},
        nodes=nodes,
    )
