"""The batch schedule of a plan, as apply will follow it: shown by `plan` (issue 15)."""

from __future__ import annotations

from ..plan.document import ScheduleDoc
from ..plan.planner import Plan
from ..release.recorder import releasing_apps
from .drain import touched_apps
from .rollout import make_batches, removing_only, rollout_strategy


def schedule(plan: Plan) -> ScheduleDoc | None:
    changed = [n.name for n in plan.doc.nodes if n.reachable and (n.changes or n.owed)]
    if not changed:
        return None
    strategy = rollout_strategy(plan, releasing_apps(plan))
    routed = {a for nd in plan.desired.nodes.values() for r in nd.resources for a in r.routes}
    drains = {
        n: apps
        for n in changed
        if (
            apps := sorted(
                a for a in touched_apps(plan, n) if a in routed and n in plan.desired.placements.get(a, [])
            )
        )
    }
    return ScheduleDoc(
        batches=make_batches(changed, strategy.batch_count(len(changed)), removing_only(plan)),
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
