"""The pure half of converging a node: (desired, diff, node state) → the typed tasks, in order.

Each kind plans its own tasks (funops/kinds/); this module gathers them into the node's two round
trips: the changes (artifacts, deletions, users, directories, files, daemon-reload, units,
containers), then the health gate per touched app, the gated groups (nginx), and housekeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .. import kinds
from ..diff.differ import NodeDiff
from ..ids import Handler
from ..kinds.base import USERS, GatedGroup, NodeWork, Step
from ..model.strategy import HealthCheck, UpdateStrategy
from ..resources import NodeDesired
from ..state.node_state import NodeState
from ..state.records import ReleaseRecord
from ..tasks import model as m


@dataclass
class NodeTasks:
    changes: list[m.Task]  # the first round trip, after the record of what the changes owe
    checks: list[tuple[m.CheckHealth, str]]  # the health gate: (task, the app it gates)
    gated: list[GatedGroup]  # after the gate, each all or nothing
    work: dict[str, NodeWork] = field(default_factory=dict)  # per kind, for housekeeping

    def housekeeping(self, state: NodeState) -> list[m.Task]:
        """What keeps the kept releases restorable, given the state as this run leaves it."""
        return [
            task
            for name, work in self.work.items()
            for task in kinds.REGISTRY[name].housekeeping(replace(work, state=state))
        ]


def plan_node(
    desired: NodeDesired,
    diff: NodeDiff,
    state: NodeState,
    *,
    state_dir: str,
    strategies: Mapping[str, UpdateStrategy],
    cleanup_images: set[str],
    records: list[ReleaseRecord],
) -> NodeTasks:
    handlers = diff.handlers()
    pending = diff.pending
    by_id = {r.id: r for r in desired.resources}
    steps: list[Step] = []
    work = {}
    for name, kind in kinds.REGISTRY.items():
        mine = [c for c in pending if c.id.kind == name]
        work[name] = NodeWork(
            desired=by_id,
            writes=[(c, by_id[c.id]) for c in mine if c.action != "delete"],
            deletes=[c for c in mine if c.action == "delete"],
            handlers=handlers,
            state=state,
            state_dir=state_dir,
            cleanup_images=cleanup_images,
            records=records,
        )
        steps += kind.tasks(work[name])
    # Users of `createUser` apps come before the files they may own (idempotent: `id -u` first).
    users = sorted({a.create_user for a in desired.apps.values()} - {None})
    steps += [Step(USERS, m.EnsureUser(u)) for u in users if u]
    changes = list({s.task.name: s.task for s in sorted(_one_reload(steps), key=lambda s: s.stage)}.values())
    gated = [g for name, kind in kinds.REGISTRY.items() if (g := kind.gated(work[name]))]
    return NodeTasks(changes, _health_checks(desired, diff, handlers, strategies), gated, work)


def _health_checks(
    desired: NodeDesired, diff: NodeDiff, handlers: list[Handler], strategies: Mapping[str, UpdateStrategy]
) -> list[tuple[m.CheckHealth, str]]:
    """A health check for every app this run touched on the node (with the app it gates)."""
    touched = {c.owner.app for c in diff.pending if c.owner.app and c.action != "delete"}
    touched |= {app for h in handlers if (app := kinds.app_of_handler(h))}
    checks = []
    for name in sorted(touched):
        app = desired.apps.get(name)
        if app is None:
            continue
        strategy = strategies.get(name) or UpdateStrategy()
        task = m.CheckHealth(
            name, m.HealthProbe.of(app.health or HealthCheck()), host=app.bind, port=app.port, unit=app.unit,
            container=app.container, min_healthy_seconds=strategy.min_healthy_seconds,
        )  # fmt: skip
        checks.append((task, name))
    return checks


def _one_reload(steps: list[Step]) -> list[Step]:
    """The unit kinds' daemon-reloads (a unit's, a job's) as one, for all their unit files."""
    reloads = [s for s in steps if isinstance(s.task, m.DaemonReload)]
    if len(reloads) < 2:
        return steps
    files = tuple(sorted({f for s in reloads for f in s.task.unit_files}))  # type: ignore[attr-defined]
    joined = Step(reloads[0].stage, m.DaemonReload(files))
    return [s for s in steps if s not in reloads] + [joined]
