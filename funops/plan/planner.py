"""load → compile → gather → diff → plan: the pure stages around one gather of the live world."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace

from .. import kinds
from ..certificates import settle
from ..compile.compiler import DesiredState, Facts, compile_project, compile_with_facts
from ..diff.differ import Change, NodeDiff, diff_node, live_attributes
from ..gather.gatherer import NodeGather, gather, refuse_unreadable_states
from ..load.project import Project
from ..load.targets import select_nodes
from ..model.placement import NodeCapacity
from ..redact import keyed_fingerprint
from ..resources import TemplateOrigin
from ..state.lock import held
from ..state.records import UNFINISHED
from ..transports import Connections, Transport
from .diffs import DiffOptions, attach
from .document import (
    CertificateDoc,
    ChangeDoc,
    FieldChangeDoc,
    NodeDoc,
    PlanDoc,
    RevisionDoc,
    SummaryDoc,
    TemplateDoc,
)
from .model import Intent, Plan
from .program import make_program
from .schedule import schedule


def make_plan(
    project: Project,
    targets: list[str] | None = None,
    connect: Callable[[str], Transport] | None = None,
    intent: Intent | None = None,
    unreadable_state_ok: bool = False,
    diff: DiffOptions | None = None,
    drain: str | None = None,
    compiled: Callable[[Project], DesiredState] | None = None,
) -> Plan:
    """The plan for the repo (or, with an intent covering some apps, for those apps only). A node
    whose state file cannot be read refuses the plan, unless `unreadable_state_ok` (drift reports).
    With `diff`, each file change also says what changes inside the file. `compiled`: what gives the
    project compiled without facts, if not compile_project (the CLI's cache, funops/cache/compiled.py)."""
    intent = intent or Intent()
    names = select_nodes(project.nodes, targets)  # names, globs, label selectors
    # Connections of its own are needed again only for a few nodes (placement moved, file diffs):
    # each rests once gathered (an agent's is closed, dialled again if needed).
    # So do those lent to it as its own (`rest_once_gathered`: the no-op cache's, cache/record.py).
    own = Connections(project.nodes, project.settings, project.root) if connect is None else None
    connect = connect or own
    assert connect is not None
    done = own.rest if own is not None else getattr(connect, "rest_once_gathered", None)
    first = _scoped((compiled or compile_project)(project), intent.apps)
    wanted = {n: first.nodes[n] for n in names}
    # Only placement by count reads the running containers (each count: the docker CLI on the node).
    count = any(app.spec.replicas for app in project.apps.values())
    state_dir, parallel = project.settings.state_dir, project.settings.parallel
    gathered = gather(wanted, connect, state_dir, parallel, containers=count, done=done, apps=intent.apps)
    facts = live_facts(gathered)
    if drain:  # `funops drain NODE`: its replicas apps are placed anew, elsewhere (it is cordoned)
        moving = {a for a, app in project.apps.items() if app.spec.replicas}
        if intent.apps is None:  # the drain only: other pending changes wait for their own apply
            intent = replace(intent, apps={a for a in moving if drain in facts.placements.get(a, ())})
        facts.placements = {a: n - {drain} if a in moving else n for a, n in facts.placements.items()}
    desired = _scoped(compile_with_facts(project, facts, first), intent.apps)
    # Placement may move with live facts: probe again the nodes whose resources the first pass missed.
    again = {
        n: desired.nodes[n]
        for n, g in gathered.items()
        if g.reachable and {r.id for r in desired.nodes[n].resources} - g.probed
    }
    if again:
        gathered.update(
            gather(again, connect, state_dir, parallel, containers=count, done=done, apps=intent.apps)
        )
    plan = plan_from(project, names, desired, gathered, intent, unreadable_state_ok)
    if diff is not None:
        attach_diffs(plan, connect, diff)
    if own is not None:
        own.close()
    return plan


def attach_diffs(plan: Plan, connect: Callable[[str], Transport], options: DiffOptions) -> int:
    """Fill in the `diff` of the plan's file changes (one more round trip, for nodes with file
    updates or deletes only); returns the number of nodes that needed it."""
    nodes = {}
    for node_doc in plan.doc.nodes:
        g = plan.gathered[node_doc.name]
        if g.facts is None or not node_doc.changes:
            continue
        resources = {r.id: r for r in plan.desired.nodes[node_doc.name].resources}
        nodes[node_doc.name] = (node_doc.changes, resources, g.facts.node_state)
    settings = plan.project.settings
    return attach(nodes, connect, options, settings.state_dir, settings.parallel)


def plan_from(
    project: Project,
    names: list[str],
    desired: DesiredState,
    gathered: dict[str, NodeGather],
    intent: Intent,
    unreadable_state_ok: bool = False,
) -> Plan:
    """Diff what was gathered against `desired` (only the intent's apps may lose resources)."""
    if not unreadable_state_ok:
        refuse_unreadable_states(gathered, project.settings.state_dir)
    certificates = settle(project, desired, gathered, intent.certificates)
    diffs = {
        n: diff_node(desired.nodes[n], g.facts, intent.apps)
        for n, g in gathered.items()
        if g.facts is not None
    }
    doc = _document(project, names, desired, gathered, diffs)
    now = dt.datetime.now(dt.UTC)
    doc.certificates = [CertificateDoc.model_validate(c.doc(now)) for c in certificates]
    plan = Plan(project, desired, gathered, diffs, doc, intent, certificates)
    plan.program = make_program(plan)
    doc.schedule = schedule(plan)
    return plan


def _scoped(desired: DesiredState, apps: set[str] | None) -> DesiredState:
    """Only what belongs to the releases of `apps` (see Resource.in_release_of)."""
    if apps is None:
        return desired
    for nd in desired.nodes.values():
        nd.resources = [r for r in nd.resources if any(r.in_release_of(a) for a in apps)]
        nd.apps = {a: p for a, p in nd.apps.items() if a in apps}
    desired.placements = {a: n for a, n in desired.placements.items() if a in apps}
    desired.versions = {a: v for a, v in desired.versions.items() if a in apps}
    return desired


def live_facts(gathered: dict[str, NodeGather]) -> Facts:
    """What compile may take from the gathered nodes (capacity, sticky placements)."""
    capacity = {}
    placements: dict[str, set[str]] = {}
    for name, g in gathered.items():
        if g.facts is None:
            continue
        capacity[name] = NodeCapacity(g.facts.disk_free_pct, g.facts.container_count)
        for app in g.facts.node_state.apps:
            placements.setdefault(app, set()).add(name)
    return Facts(capacity=capacity, placements={a: frozenset(n) for a, n in placements.items()})


def observed_digest(g: NodeGather) -> str:
    """A digest of what was seen on the node: every probed resource's live attributes and the state
    file (not volatile facts such as free disk)."""
    import hashlib
    import hmac
    import json

    assert g.facts is not None
    seen = {rid: kinds.kind_of(rid).observed(live_attributes(rid, g.facts)) for rid in sorted(g.probed)}
    # json.dumps({"resources": seen, "state": state}, sort_keys=True, default=str), the state's part
    # as the facts hold it already (parsing it again per node cost a 2,000-node plan ~0.5 s).
    state = g.facts.state_json or "null"
    body = f'{{"resources": {json.dumps(seen, sort_keys=True, default=str)}, "state": {state}}}'.encode()
    key = g.facts.fingerprint_key  # it covers secret files' hashes: keyed, else guessable from plan JSON
    return hmac.new(key, body, hashlib.sha256).hexdigest() if key else hashlib.sha256(body).hexdigest()


def _interrupted(g: NodeGather) -> list[str]:

    assert g.facts is not None
    if held(g.facts.lock):
        return []
    state = g.facts.node_state
    return sorted(r.id for recs in state.releases.values() for r in recs if r.status in UNFINISHED)


def _change_doc(change: Change, template: TemplateOrigin | None, key: bytes | None) -> ChangeDoc:
    def show(field: str, value: object) -> object:
        # Only the content hash of a secret can leak it (a guessable value); mode and owner cannot.
        secret = change.secret and field == "sha256" and value is not None
        return keyed_fingerprint(value, key) if secret else value

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
        template=template
        and TemplateDoc(
            name=template.name, origin=template.origin, path=template.path, uses=list(template.uses)
        ),
    )


def _template(desired: DesiredState, node: str, change: Change) -> TemplateOrigin | None:
    res = desired.nodes[node].resource(change.id) if change.action != "delete" else None
    return res.template if res else None


def _document(
    project: Project,
    names: list[str],
    desired: DesiredState,
    gathered: dict[str, NodeGather],
    diffs: dict[str, NodeDiff],
) -> PlanDoc:
    nodes = []
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0, "unchanged": 0, "owed": 0}
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
            for kind in kinds.REGISTRY.values():
                facts |= kind.reported(g.facts)
        nodes.append(
            NodeDoc(
                observed=observed_digest(g) if g.facts else None,
                interrupted=_interrupted(g) if g.facts else [],
                name=name,
                address=node.address,
                transport=node.transport,
                reachable=g.reachable,
                error=g.error,
                changes=[
                    _change_doc(c, _template(desired, name, c), g.facts.fingerprint_key if g.facts else None)
                    for c in changes
                ],
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
