"""The release records a rollout writes: one per app that changes, on each node where it changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..diff.differ import NodeDiff
from ..kinds import app_of_handler
from ..model.strategy import UpdateStrategy
from ..resources import NodeDesired
from ..state.records import PlacementSpec, ReleaseRecord, ResourceSpec, RevisionRef, release_id
from .model import Plan
from .schedule import releasing_apps


@dataclass
class NodeReleases:
    """What one node's run records: new releases (running, then succeeded or failed) and the
    releases it undoes (marked rolled_back once it succeeded)."""

    records: list[ReleaseRecord] = field(default_factory=list)
    rolls_back: list[str] = field(default_factory=list)
    keep: int = 5


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def next_number(plan: Plan, app: str) -> int:
    numbers = [
        r.number
        for g in plan.gathered.values()
        if g.facts is not None
        for r in g.facts.node_state.releases.get(app, [])
    ]
    return max(numbers, default=0) + 1


def plan_releases(plan: Plan, rollout: str, who: str) -> dict[str, NodeReleases]:
    apps = releasing_apps(plan)
    numbers = {app: next_number(plan, app) for app in apps}
    rev = plan.project.revision
    revision = RevisionRef(commit=rev.commit, dirty=rev.dirty, ref=rev.ref)
    started = now()
    keep = plan.project.settings.keep_releases
    out = {}
    for name, diff in plan.diffs.items():
        desired = plan.desired.nodes[name]
        records = [
            release_record(
                desired,
                app,
                numbers[app],
                rollout,
                who,
                started,
                plan.strategy_of(app),
                revision=plan.intent.revisions.get(app, revision),
                kind=plan.intent.kind,
                restores=plan.intent.restores.get(app),
            )
            for app in sorted(apps)
            if touches(desired, diff, app)
        ]
        rolls_back = [plan.intent.rolls_back[a] for a in sorted(apps) if a in plan.intent.rolls_back]
        out[name] = NodeReleases(records, rolls_back, keep)
    return out


def release_record(
    desired: NodeDesired,
    app: str,
    number: int,
    rollout: str,
    who: str,
    started: str,
    strategy: UpdateStrategy,
    revision: RevisionRef,
    kind: str = "deploy",
    restores: str | None = None,
) -> ReleaseRecord:
    """`app`'s release on this node: its placement and the resources of its release, as desired."""
    placement = desired.apps.get(app)
    return ReleaseRecord(
        id=release_id(app, number),
        app=app,
        number=number,
        kind=kind,  # type: ignore[arg-type]
        revision=revision,
        version=placement.version if placement else None,
        restores=restores,
        rollout=rollout,
        who=who,
        started=started,
        strategy=strategy.model_dump(by_alias=True),
        placement=PlacementSpec.of(placement) if placement else None,
        resources=[ResourceSpec.of(r) for r in desired.resources if r.in_release_of(app)],
    )


def touches(desired: NodeDesired, diff: NodeDiff, app: str) -> bool:
    """Does this node's diff change `app` (its resources, its release's, a restart it still owes)?"""
    if any(app_of_handler(h) == app for h in diff.owed):
        return True
    for change in diff.pending:
        res = desired.resource(change.id)
        if change.owner.app == app or (res is not None and res.in_release_of(app)):
            return True
    return False
