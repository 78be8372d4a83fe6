"""Release history from the nodes' records: one entry per release, its status over all its nodes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ..gather.gatherer import NodeGather, gather
from ..load.project import Project
from ..resources import NodeDesired
from ..state import lock
from ..state.node_state import NodeState
from ..state.records import UNFINISHED, ReleaseRecord, RevisionRef
from ..transports import Transport

# A release's status over its nodes: the most telling node status wins.
_PRECEDENCE = ("rolled_back", "running", "created", "failed", "succeeded")


@dataclass
class Release:
    """One release of an app as the nodes' records tell it, merged over the nodes."""

    id: str
    app: str
    number: int
    kind: str
    status: str
    revision: RevisionRef
    versions: list[str]
    nodes: dict[str, str]  # node → its status there
    who: str | None
    started: str | None
    finished: str | None
    restores: str | None
    errors: dict[str, str] = field(default_factory=dict)
    records: dict[str, ReleaseRecord] = field(default_factory=dict, repr=False)  # node → record

    @property
    def seconds(self) -> float | None:
        if not (self.started and self.finished):
            return None
        delta = dt.datetime.fromisoformat(self.finished) - dt.datetime.fromisoformat(self.started)
        return delta.total_seconds()


def gather_states(
    project: Project, connect: Callable[[str], Transport], names: list[str] | None = None
) -> dict[str, NodeGather]:
    """Every node's state file and lock in one round trip (no resource is probed)."""
    empty = {n: NodeDesired(project.nodes[n]) for n in names or project.nodes}
    return gather(empty, connect, project.settings.state_dir, project.settings.parallel, follow_managed=False)


def node_states(gathered: dict[str, NodeGather]) -> dict[str, NodeState]:
    """Reachable nodes' states, with the crash rule applied where no apply holds the node."""
    out = {}
    for name, g in gathered.items():
        if g.facts is None:
            continue
        state = g.facts.node_state
        if not lock.held(g.facts.lock):
            state.settle_interrupted()
        out[name] = state
    return out


def releases(states: dict[str, NodeState], app: str | None = None) -> list[Release]:
    """Newest first."""
    merged: dict[str, Release] = {}
    for node, state in sorted(states.items()):
        for name, recs in state.releases.items():
            if app is not None and name != app:
                continue
            for rec in recs:
                rel = merged.get(rec.id)
                if rel is None:
                    rel = merged[rec.id] = Release(
                        id=rec.id, app=rec.app, number=rec.number, kind=rec.kind, status=rec.status,
                        revision=rec.revision, versions=[], nodes={}, who=rec.who, started=rec.started,
                        finished=rec.finished, restores=rec.restores,
                    )  # fmt: skip
                rel.records[node] = rec
                rel.nodes[node] = rec.status
                if rec.version and rec.version not in rel.versions:
                    rel.versions.append(rec.version)
                if rec.error:
                    rel.errors[node] = rec.error
                rel.started = min(filter(None, [rel.started, rec.started]), default=None)
                rel.finished = max(filter(None, [rel.finished, rec.finished]), default=None)
    for rel in merged.values():
        rel.status = next(s for s in _PRECEDENCE if s in rel.nodes.values())
        rel.versions.sort()
        if rel.status in UNFINISHED:
            rel.finished = None
    return sorted(merged.values(), key=lambda r: (r.app, r.number), reverse=True)


def by_app(rels: list[Release], app: str) -> list[Release]:
    return sorted((r for r in rels if r.app == app), key=lambda r: r.number, reverse=True)


def bad_revisions(states: dict[str, NodeState]) -> dict[str, dict[str, str]]:
    """app → commit → the release that was rolled back with it: those commits must not come back
    by themselves (Argo CD's auto-sync fighting a rollback: argoproj/argo-cd#9570)."""
    bad: dict[str, dict[str, str]] = {}
    for rel in sorted(releases(states), key=lambda r: r.number):
        commit = rel.revision.commit
        if not commit or rel.revision.dirty:
            continue
        marks = bad.setdefault(rel.app, {})
        if rel.status == "rolled_back":
            marks[commit] = rel.id
        elif rel.status == "succeeded" and rel.kind == "deploy":
            marks.pop(commit, None)  # deployed again on purpose (--force), and it held
    return {app: marks for app, marks in bad.items() if marks}
