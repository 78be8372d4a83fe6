"""Rollback planning: which release to return to, and the plan that puts it back.

By release id the recorded artifacts are restored (no repo needed: the current manifests may not
even validate); by git revision the manifests of that commit are compiled. Either way the result
is an ordinary Plan, so it prints like `plan` and applies through the same batches and health gates.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..compile.compiler import DesiredState
from ..errors import FunopsError
from ..gather.gatherer import NodeGather, gather
from ..ids import Owner
from ..load.project import Project
from ..plan.planner import Intent, Plan, make_plan, plan_from
from ..resources import NodeDesired
from ..state.node_state import NodeState
from ..state.records import ReleaseRecord
from ..transports import Transport
from .history import Release, by_app, gather_states, node_states, releases


def current_release(rels: list[Release], app: str) -> Release:
    history = by_app(rels, app)
    if not history:
        raise FunopsError(f"no release of {app!r} is recorded on any reachable node")
    return history[0]


def pick_target(rels: list[Release], app: str, to: str | None) -> Release:
    """`to`: a release id (`web-3`) or number (`3`); None: the last succeeded release before the
    current one."""
    history = by_app(rels, app)
    current = current_release(rels, app)
    if to is None:
        for rel in history:
            if rel.number < current.number and rel.status == "succeeded":
                return rel
        raise FunopsError(
            f"{app} has no succeeded release before {current.id} on its nodes "
            f"(kept: {', '.join(r.id for r in history)})"
        )
    number = int(to.rsplit("-", 1)[-1])
    for rel in history:
        if rel.number == number:
            return rel
    raise FunopsError(
        f"release {app}-{number} is not kept on any reachable node (kept: {', '.join(r.id for r in history)})"
    )


def is_release_ref(app: str, to: str) -> bool:
    return re.fullmatch(rf"({re.escape(app)}-)?\d{{1,6}}", to) is not None


def restore_plan(
    project: Project,
    app: str,
    target: Release,
    current: Release,
    gathered: dict[str, NodeGather],
    connect: Callable[[str], Transport],
    kind: str = "rollback",
    nodes: list[str] | None = None,
) -> Plan:
    """Put `target`'s recorded artifacts back on every node (or on `nodes`): on each node, the
    newest record of the app at or before the target is what the app looked like there."""
    states = node_states(gathered)
    desired_nodes: dict[str, NodeDesired] = {}
    for name, state in sorted(states.items()):
        if nodes is not None and name not in nodes:
            continue
        base = _as_of(state, app, target.number)
        kept = state.releases.get(app, [])
        if base is None and len(kept) >= project.settings.keep_releases:
            raise FunopsError(
                f"{target.id} is no longer kept on {name} (it keeps the last "
                f"{project.settings.keep_releases}: {', '.join(r.id for r in kept)})"
            )
        if base is not None:
            nd = NodeDesired(project.nodes[name], [s.resource() for s in base.resources])
            if base.placement is not None:
                nd.apps[app] = base.placement.placement()
            nd.sort()
            desired_nodes[name] = nd
        elif _has_app(state, app):  # the app came to this node after the target: it leaves
            desired_nodes[name] = NodeDesired(project.nodes[name])
    missing = [
        n
        for n, s in states.items()
        if (nodes is None or n in nodes) and _has_app(s, app) and not _recorded(s, app)
    ]
    if missing:
        raise FunopsError(
            f"{', '.join(missing)}: {app} runs there but no release of it is recorded (deployed by "
            "an older funops?); roll back by git revision instead: --to REVISION"
        )
    desired = DesiredState(
        nodes=desired_nodes,
        placements={app: sorted(n for n, d in desired_nodes.items() if app in d.apps)},
        versions={app: {n: d.apps[app].version for n, d in desired_nodes.items() if app in d.apps}},
    )
    fresh = gather(desired_nodes, connect, project.settings.state_dir, project.settings.parallel, apps={app})
    strategy = target.records[next(iter(target.records))].update_strategy()
    intent = Intent(
        kind=kind,
        apps={app},
        restores={app: target.id},
        rolls_back={app: current.id} if current.id != target.id else {},
        revisions={app: target.revision},
        strategies={app: strategy} if strategy else {},
    )
    return plan_from(project, sorted(desired_nodes), desired, fresh, intent)


def auto_rollback_plan(
    project: Project, app: str, failed: str, nodes: list[str], connect: Callable[[str], Transport]
) -> Plan | None:
    """The plan returning `nodes` (those a halted rollout updated) to the release before `failed`;
    None when there is none (the app's first release)."""
    gathered = gather_states(project, connect, nodes)
    rels = by_app(releases(node_states(gathered), app), app)
    current = next((r for r in rels if r.id == failed), None)
    previous = next(
        (r for r in rels if current and r.number < current.number and r.status == "succeeded"), None
    )
    if current is None or previous is None:
        return None
    return restore_plan(project, app, previous, current, gathered, connect, "auto-rollback", nodes)


def revision_plan(
    project: Project, app: str, current: Release | None, connect: Callable[[str], Transport]
) -> Plan:
    """`project` was loaded at the wanted git revision: its manifests for `app`, applied."""
    if app not in project.apps:
        raise FunopsError(f"{app!r} is not an application at {project.revision.describe()}")
    intent = Intent(
        kind="rollback",
        apps={app},
        restores={},
        rolls_back={app: current.id} if current else {},
    )
    return make_plan(project, None, connect, intent)


def _as_of(state: NodeState, app: str, number: int) -> ReleaseRecord | None:
    recs = [r for r in state.releases.get(app, []) if r.number <= number]
    return max(recs, key=lambda r: r.number) if recs else None


def _recorded(state: NodeState, app: str) -> bool:
    return bool(state.releases.get(app))


def _has_app(state: NodeState, app: str) -> bool:
    return app in state.apps or any(Owner(m.owner).app == app for m in state.managed.values())
