"""The rollout's rules, as plan shows them and apply follows them (issue 15; README.md, "Using it"):
which apps release, the strategy in force, the batches (nodes that only remove instances last), which
instances are drained first. Pure functions of a plan, called once when it is made (plan/program.py):
apply follows the program's schedule and never calls them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..kinds import app_of_handler
from ..model.strategy import UpdateStrategy
from .document import ScheduleDoc

if TYPE_CHECKING:
    from ..diff.differ import NodeDiff
    from ..resources import NodeDesired
    from .model import Plan


def releasing_apps(plan: Plan) -> set[str]:
    """Apps that get a release: those whose own resources change (a deploy), or whose release
    resources change in a plan that covers them (a rollback may only touch an ingress file)."""
    apps = set()
    for name, diff in plan.diffs.items():
        apps |= node_releasing_apps(plan.desired.nodes[name], diff, plan.intent.apps)
    return apps if plan.intent.apps is None else apps & plan.intent.apps


def node_releasing_apps(desired: NodeDesired, diff: NodeDiff, scope: set[str] | None = None) -> set[str]:
    """The apps one node's diff releases (`scope`: the apps a plan covers, see releasing_apps)."""
    # A restart owed by an unfinished apply completes that app's change: it is released again.
    apps = {app for h in diff.owed if (app := app_of_handler(h)) in desired.apps}
    for change in diff.pending:
        if change.owner.app:
            apps.add(change.owner.app)
        res = desired.resource(change.id)
        for app in scope or ():
            if res is not None and res.in_release_of(app):
                apps.add(app)
    return apps


def rollout_strategy(plan: Plan, changing_apps: set[str]) -> UpdateStrategy:
    """The strictest strategy among the apps that change (the project default if none does)."""
    strategies = [plan.strategy_of(a) for a in sorted(changing_apps)] or [plan.project.settings.strategy]
    nodes = max(1, sum(1 for n in plan.doc.nodes if n.changes or n.owed))
    smallest = min(strategies, key=lambda s: s.batch_count(nodes))
    return UpdateStrategy(
        batch_size=smallest.batch_count(nodes),
        max_failures=min(s.max_failures for s in strategies),
        pause_seconds=max(s.pause_seconds for s in strategies),
        min_healthy_seconds=max(s.min_healthy_seconds for s in strategies),
        auto_rollback=any(s.auto_rollback for s in strategies),
        bake_seconds=max(s.bake_seconds for s in strategies),
    )


def make_batches(
    nodes: list[str], size: int, last: set[str] | frozenset[str] = frozenset()
) -> list[list[str]]:
    """By name; the nodes in `last` (they only remove instances) after the others, so an instance
    that moves starts on its new node before it stops on the old one."""
    ordered = sorted(nodes, key=lambda n: (n in last, n))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def removing_only(plan: Plan) -> set[str]:
    """Nodes whose only changes remove app instances (what `drain NODE` leaves on NODE)."""
    return {
        name
        for name, diff in plan.diffs.items()
        if diff.pending
        and all(c.action == "delete" or c.owner.app is None for c in diff.pending)
        and any(c.action == "delete" for c in diff.pending)
    }


def _running(plan: Plan, node: str) -> set[str]:
    """The apps the node runs now (its state file's): an instance not started yet takes no traffic,
    so there is nothing to drain before its batch."""
    facts = plan.gathered[node].facts
    return set(facts.node_state.apps) if facts is not None else set()


def schedule(plan: Plan) -> ScheduleDoc | None:
    """The document's view of the program's schedule (plan/program.py decided it)."""
    changed = [n for batch in plan.program.batches for n in batch]
    if not changed:
        return None
    strategy = plan.program.strategy
    routed = {a for nd in plan.desired.nodes.values() for r in nd.resources for a in r.routes}
    drains = {
        n: apps
        for n in changed
        if (
            apps := sorted(
                a
                for a in plan.program.nodes[n].touched
                if a in routed and n in plan.desired.placements.get(a, []) and a in _running(plan, n)
            )
        )
    }
    return ScheduleDoc(
        batches=plan.program.batches,
        max_failures=strategy.max_failures,
        pause_seconds=strategy.pause_seconds,
        min_healthy_seconds=strategy.min_healthy_seconds,
        bake_seconds=strategy.bake_seconds,
        auto_rollback=strategy.auto_rollback,
        drains=drains,
    )


def schedule_lines(doc: ScheduleDoc) -> list[str]:
    """The schedule for people (text and Markdown alike)."""
    lines = []
    for i, batch in enumerate(doc.batches, start=1):
        drained = [f"{n}: {', '.join(doc.drains[n])}" for n in batch if n in doc.drains]
        line = f"batch {i}/{len(doc.batches)}: {', '.join(batch)}"
        if drained:
            line += f" (drain first: {'; '.join(drained)})"
        if i > 1 and doc.pause_seconds:
            line = f"pause {doc.pause_seconds:g}s, then {line}"
        lines.append(line)
    if doc.bake_seconds:
        lines.append(f"bake {doc.bake_seconds:g}s: health-checked after the last batch")
    extra = f"halt after {doc.max_failures + 1} failed node(s)"
    lines.append(extra + ("; auto rollback" if doc.auto_rollback else ""))
    return lines
