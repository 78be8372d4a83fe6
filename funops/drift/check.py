"""One drift check: load acknowledgements → make_plan (one gather) → the extra probe → classify."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from ..exit_codes import EXIT_CHANGES as EXIT_DRIFT
from ..exit_codes import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, worst
from ..load.project import Project
from ..plan.diffs import DiffOptions
from ..plan.document import RevisionDoc
from ..plan.planner import Intent, Plan, make_plan
from ..transports import Transport
from .acks import LocatedAck, apply_acks, load_acks
from .classify import certificate_drift, classify_node
from .diffs import drift_wants, with_diffs
from .document import DRIFT_CLASSES, DriftDoc, FixDoc, NodeDriftDoc, SummaryDoc
from .extras import probe_extras


@dataclass
class DriftCheck:
    plan: Plan
    doc: DriftDoc
    acks: list[LocatedAck]


def run_check(
    project: Project,
    targets: list[str] | None,
    connect: Callable[[str], Transport],
    today: dt.date | None = None,
    diff: DiffOptions | None = None,
    intent: Intent | None = None,
) -> DriftCheck:
    """With `diff`, each modified file also shows what changed in it (fetched in the extra round trip)."""
    acks = load_acks(project)  # a bad ack file fails before any node is contacted
    plan = make_plan(project, targets, connect, intent, unreadable_state_ok=True)
    reachable = {n: plan.desired.nodes[n] for n, g in plan.gathered.items() if g.reachable}
    wants = {
        n: drift_wants(plan.desired.nodes[n], g.facts, project.settings.state_dir)
        for n, g in plan.gathered.items()
        if g.facts is not None and diff is not None
    }
    fetch = {n: [p for w in ws.values() for p in w.paths()] for n, (ws, _) in wants.items()}
    limit = (diff or DiffOptions()).max_bytes
    extras = probe_extras(reachable, connect, project.settings.parallel, fetch=fetch, limit=limit)
    nodes = []
    for node_doc in plan.doc.nodes:
        name = node_doc.name
        facts = plan.gathered[name].facts
        doc = NodeDriftDoc(
            name=name, address=node_doc.address, transport=node_doc.transport, reachable=facts is not None,
            error=node_doc.error, drift=[], pending=[], notices=[], nginx_test=None,
        )  # fmt: skip
        if facts is not None:
            found = classify_node(plan.desired.nodes[name], facts, extras.get(name))
            doc.drift, doc.pending, doc.notices, doc.nginx_test = (
                found.drift, found.pending, found.notices, found.nginx_test
            )  # fmt: skip
            if diff is not None and name in wants:
                node_extras = extras.get(name)
                got, error = (node_extras.contents, node_extras.error) if node_extras else ({}, None)
                with_diffs(doc.drift, *wants[name], got, error, diff)
            doc.drift += [
                item for d in plan.certificates if (item := certificate_drift(d, name, facts)) is not None
            ]
            if facts.state_error:
                doc.notices.append(f"{facts.state_error}: apply refuses this node until it is repaired")
        nodes.append(doc)
    unused = apply_acks(nodes, acks, today or dt.datetime.now(dt.UTC).date())
    rev = project.revision
    doc = DriftDoc(
        project=project.settings.project,
        revision=RevisionDoc(commit=rev.commit, dirty=rev.dirty, ref=rev.ref),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        targets=plan.doc.targets,
        status="clean",
        exit_code=EXIT_OK,
        summary=summarize(nodes, unused),
        nodes=nodes,
        fix=None,
    )
    settle(doc)
    return DriftCheck(plan, doc, acks)


def summarize(nodes: list[NodeDriftDoc], unused: list[str]) -> SummaryDoc:
    live = [i for n in nodes for i in n.drift if not i.acknowledged]
    return SummaryDoc(
        drift=len(live),
        acknowledged=sum(1 for n in nodes for i in n.drift if i.acknowledged),
        pending=sum(len(n.pending) for n in nodes),
        by_class={c: sum(1 for i in live if i.drift_class == c) for c in DRIFT_CLASSES},
        nodes=len(nodes),
        nodes_drifted=sum(1 for n in nodes if any(not i.acknowledged for i in n.drift)),
        nodes_unreachable=sum(1 for n in nodes if not n.reachable),
        unused_acks=unused,
    )


def settle(doc: DriftDoc, fix: FixDoc | None = None, remaining: int | None = None) -> None:
    """Status and exit code from what was found (and, with --fix, what the fix left)."""
    drift = doc.summary.drift if remaining is None else remaining
    codes = [EXIT_DRIFT if drift else EXIT_OK]
    if doc.summary.nodes_unreachable:
        codes.append(EXIT_UNREACHABLE)
    if fix is not None:
        doc.fix = fix
        if fix.halted or any(o.status in ("failed", "skipped") for o in fix.nodes.values()):
            codes.append(EXIT_PARTIAL)
        elif any(o.status == "unreachable" for o in fix.nodes.values()):
            codes.append(EXIT_UNREACHABLE)
    doc.exit_code = worst(*codes)
    doc.status = "drift" if drift else ("unreachable" if doc.summary.nodes_unreachable else "clean")
