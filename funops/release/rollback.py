"""What `funops rollback` and a halted rollout's auto-rollback decide: which release to return to, on
which nodes, with which plan. The CLI only prints the plan, confirms and runs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import FunopsError
from ..gather.gatherer import refuse_unreadable_states
from ..load.project import Project
from ..plan.planner import Plan
from ..plan.schedule import releasing_apps
from ..transports import Connections, Transport
from .history import bad_revisions, by_app, gather_states, node_states, releases
from .restore import (
    auto_rollback_plan,
    current_release,
    is_release_ref,
    pick_target,
    restore_plan,
    revision_plan,
)


def rolled_back_hits(plan: Plan) -> list[tuple[str, str]]:
    """(app, release id) for each app the plan would deploy at a commit that was rolled back."""
    rev = plan.project.revision
    if not rev.commit or rev.dirty or plan.intent.kind != "deploy":
        return []
    bad = bad_revisions(node_states(plan.gathered))
    return sorted(
        (app, bad[app][rev.commit]) for app in releasing_apps(plan) if rev.commit in bad.get(app, {})
    )


def refuse_rolled_back(plan: Plan) -> None:
    """A revision that was rolled back stays rolled back: re-running CI on it (or a cron fix) must not
    bring it back by itself (argoproj/argo-cd#9570). `apply --force` skips this."""
    hits = rolled_back_hits(plan)
    if hits:
        raise rolled_back_error(plan.project.revision.commit or "", hits)


def rolled_back_error(commit: str, hits: list[tuple[str, str]]) -> FunopsError:
    which = ", ".join(f"{app} (release {rid} was rolled back)" for app, rid in hits)
    return FunopsError(
        f"revision {commit[:12]} was rolled back for {which}: refusing to deploy "
        "it again. Commit a fix, or pass --force to deploy this revision anyway."
    )


def rollback_paths(plan: Plan) -> dict[str, tuple[str, str | None]]:
    """app → (the release the plan makes, the one a halt returns to: the last succeeded release
    before it on the nodes, None when there is none) for each app whose strategy says autoRollback:
    what a saved plan shows and carries (`auto_rollbacks` decides again from the nodes' records)."""
    made = {r.app: r for p in plan.program.nodes.values() for r in p.records}
    rels = releases(node_states(plan.gathered))
    paths = {}
    for app, record in sorted(made.items()):
        if not plan.strategy_of(app).auto_rollback:
            continue
        back = next(
            (r.id for r in by_app(rels, app) if r.number < record.number and r.status == "succeeded"), None
        )
        paths[app] = (record.id, back)
    return paths


@dataclass
class Rollback:
    """A rollback ready to apply: the plan back to the earlier release, and how to reach its nodes."""

    plan: Plan
    what: str  # one line for the person confirming: "web: web-4 (v2) → web-3 (v1, revision …)"
    connections: Connections  # the plan's nodes, as the release's inventory names them


def plan_rollback(
    project: Project,
    app: str,
    to: str | None,
    connections: Connections,
    skip_unreachable: bool,
    inventory: list[Path] | None = None,
) -> Rollback:
    """`to`: a release id or number (restore its recorded artifacts), a git revision (apply the app's
    manifests of that commit, with that commit's inventory), or None (the last succeeded release
    before the current one). The nodes' records decide; every reachable node must be readable."""
    gathered = gather_states(project, connections)
    refuse_unreadable_states(gathered, project.settings.state_dir)
    unreachable = sorted(n for n, g in gathered.items() if not g.reachable)
    if unreachable and not skip_unreachable:
        raise FunopsError(
            f"unreachable: {', '.join(unreachable)}: their records are needed to roll back "
            "(pass --skip-unreachable to roll back the others)"
        )
    rels = releases(node_states(gathered), app)
    if to is not None and not is_release_ref(app, to):
        from ..load.loader import load_project  # PyYAML: only for a rollback, not every plan

        at = load_project(project.root, to, inventory)
        at_connections = Connections(at.nodes, at.settings, at.root)
        current = current_release(rels, app) if rels else None
        return Rollback(
            revision_plan(at, app, current, at_connections),
            f"{app} → its manifests at {at.revision.describe()}",
            at_connections,
        )
    current = current_release(rels, app)
    target = pick_target(rels, app, to)
    what = (
        f"{app}: {current.id} ({', '.join(current.versions) or '-'}) → {target.id} "
        f"({', '.join(target.versions) or '-'}, revision {(target.revision.commit or '-')[:12]})"
    )
    return Rollback(restore_plan(project, app, target, current, gathered, connections), what, connections)


@dataclass
class AutoRollback:
    """What a halted rollout returns to on the nodes it changed, or why it cannot."""

    app: str
    failed: str  # the release the halted rollout made
    nodes: list[str]  # the nodes it changed
    plan: Plan | None = None  # None: nothing to return to (the app's first release), or `error`
    error: str | None = None


def auto_rollbacks(
    plan: Plan,
    release_ids: dict[str, str],
    changed: dict[str, list[str]],
    connect: Callable[[str], Transport],
) -> list[AutoRollback]:
    """After a halted rollout: for every app whose strategy says autoRollback, the plan returning the
    nodes the rollout changed (`changed`: app → nodes) to the release before the one it made
    (`release_ids`: app → id). Through the same batches and health gates as a deploy: a revert that
    skips them caused outages (hashicorp/nomad#14200)."""
    found = []
    for app, failed in sorted(release_ids.items()):
        if not plan.strategy_of(app).auto_rollback or not changed.get(app):
            continue
        back = AutoRollback(app, failed, changed[app])
        try:
            back.plan = auto_rollback_plan(plan.project, app, failed, changed[app], connect)
        except FunopsError as exc:  # nodes were changed already: reported, and the other apps go on
            back.error = str(exc)
        found.append(back)
    return found
