"""The plan is the program (issue 29): what apply does on each node — its typed tasks in order, the
state records it writes, its health gate, its bake checks, the apps it drains — decided once, at plan
time, from the plan's diff and the node state the plan gathered. Apply runs exactly this; under the
lock it only re-reads each node to check it is still as the plan saw it (apply/locking.py), so the
state the records start from is the one the program was made from.

Pure functions of data: the same inputs always make the same program (tests/unit/test_program.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from .. import kinds
from ..diff.differ import NodeDiff
from ..model.strategy import HealthCheck, UpdateStrategy
from ..resources import NodeDesired
from ..state.node_state import AppRecord, ManagedResource, NodeState, secrecy_record
from ..state.records import ReleaseRecord
from ..tasks import model as m
from .model import NodeProgram, Plan, Program
from .releases import plan_releases
from .schedule import make_batches, releasing_apps, removing_only, rollout_strategy
from .taskplan import plan_node


def make_program(plan: Plan) -> Program:
    """Once per plan, from its diffs and the node states it gathered."""

    changed = [n.name for n in plan.doc.nodes if n.reachable and (n.changes or n.owed)]
    strategy = rollout_strategy(plan, releasing_apps(plan))
    batches = make_batches(changed, strategy.batch_count(len(changed) or 1), removing_only(plan))
    releases = plan_releases(plan, rollout="", who="")
    nodes = {
        name: _node(plan, name, [r.model_copy(update={"started": ""}) for r in rel.records], rel.rolls_back)
        for name, rel in releases.items()
    }
    return Program(nodes, strategy, batches)


def remake_nodes(plan: Plan, names: set[str]) -> None:
    """The programs of `names` made again from the plan's desired state, with the same releases: the
    ACME phase of apply gives certificate resources the content only the CA's answer holds."""
    for name in sorted(names & set(plan.program.nodes)):
        old = plan.program.nodes[name]
        plan.program.nodes[name] = _node(plan, name, old.records, old.rolls_back)


def remade_node(plan: Plan, name: str, desired: NodeDesired) -> NodeProgram:
    """The program of `name` made again from `desired` (its resources given other values), with the
    same releases; the plan is left as it is."""
    old = plan.program.nodes[name]
    return _node(plan, name, old.records, old.rolls_back, desired)


def _node(
    plan: Plan,
    name: str,
    records: list[ReleaseRecord],
    rolls_back: list[str],
    desired: NodeDesired | None = None,
) -> NodeProgram:
    project, settings = plan.project, plan.project.settings
    facts = plan.gathered[name].facts
    assert facts is not None  # only gathered nodes have a diff
    return node_program(
        desired or plan.desired.nodes[name], plan.diffs[name], facts.node_state, state_dir=settings.state_dir,
        strategies={a: plan.strategy_of(a) for a in {*project.apps, *plan.intent.strategies}},
        cleanup_images={a for a, app in project.apps.items() if app.spec.cleanup_images},
        records=records, rolls_back=rolls_back, keep=settings.keep_releases,
        revision=project.revision.commit, scope=plan.intent.apps,
    )  # fmt: skip


def node_program(
    desired: NodeDesired,
    diff: NodeDiff,
    state: NodeState,
    *,
    state_dir: str,
    strategies: Mapping[str, UpdateStrategy],
    cleanup_images: set[str],
    records: list[ReleaseRecord],
    rolls_back: list[str],
    keep: int,
    revision: str | None,
    scope: set[str] | None = None,
) -> NodeProgram:
    """The node's program from its desired resources, its diff and the state it was gathered with."""
    touched = sorted(
        {app for c in diff.pending if (app := c.owner.app)}
        | {app for h in diff.handlers() if (app := kinds.app_of_handler(h))}
    )
    program = NodeProgram(
        converge=bool(diff.pending or diff.owed),
        scope=sorted(scope) if scope is not None else None,
        records=list(records),
        rolls_back=list(rolls_back),
        keep=keep,
        touched=touched,
        bake=_bake_checks(desired, touched),
    )
    if not program.converge:
        return program
    running = begin_state(state, program)
    planned = plan_node(
        desired, diff, running, state_dir=state_dir, strategies=strategies,
        cleanup_images=cleanup_images, records=program.records,
    )  # fmt: skip
    program.changes = planned.changes
    program.checks = planned.checks
    program.gated = planned.gated
    program.owed = diff.handlers()
    program.deleted = sorted(c.id for c in diff.pending if c.action == "delete")
    program.managed = {
        res.id: ManagedResource(
            owner=res.owner, kind=res.kind, applied=dict(res.desired), **secrecy_record(res)
        )
        for res in desired.resources
    }
    revisions = {r.app: r.revision.commit for r in records}
    program.apps = {
        name: AppRecord(version=app.version, release=app.release, revision=revisions.get(name, revision))
        for name, app in sorted(desired.apps.items())
    }
    program.housekeeping = planned.housekeeping(end_state(running, program))
    return program


def begin_state(
    state: NodeState, program: NodeProgram, records: list[ReleaseRecord] | None = None
) -> NodeState:
    """The state the first round trip records: unfinished releases settled (the run holds the lock),
    this run's releases running, what the changes owe added."""
    out = state.model_copy(deep=True)
    out.settle_interrupted()
    for rec in program.records if records is None else records:
        out.record(rec.model_copy(update={"status": "running"}), program.keep)
    out.owed = sorted(set(out.owed) | set(program.owed))
    return out


def end_state(
    begun: NodeState, program: NodeProgram, records: list[ReleaseRecord] | None = None
) -> NodeState:
    """The state a successful run leaves: what it manages as applied, its apps, nothing owed, its
    releases succeeded and the ones it undoes rolled back."""
    out = begun.model_copy(deep=True)
    deleted = set(program.deleted)
    out.managed = {k: v for k, v in out.managed.items() if k not in deleted} | program.managed
    if program.scope is None:
        out.apps = dict(program.apps)
    else:  # a rollback of some apps: the others' records stay as they are
        out.apps = {k: v for k, v in out.apps.items() if k not in program.scope} | program.apps
    out.owed = []
    finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for rec in program.records if records is None else records:
        out.record(rec.model_copy(update={"status": "succeeded", "finished": finished}), program.keep)
    for undone in program.rolls_back:
        out.set_status(undone, "rolled_back")
    return out


def _bake_checks(desired: NodeDesired, touched: list[str]) -> list[m.CheckHealth]:
    """One probe round for the apps the rollout touches on the node: a few tries, no hold."""
    tasks = []
    for name in touched:
        app = desired.apps.get(name)
        if app is None:
            continue
        check = app.health or HealthCheck()
        once = check.model_copy(update={"retries": min(3, check.retries)})
        tasks.append(
            m.CheckHealth(
                name,
                m.HealthProbe.of(once),
                host=app.bind,
                port=app.port,
                unit=app.unit,
                container=app.container,
                min_healthy_seconds=0,
            )
        )
    return tasks
