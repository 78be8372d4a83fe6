"""`funops restart APP`: a rolling restart without a manifest change. The plan covers the app alone
(as `--app` does) and owes, on each node the app runs on, the restart of its unit or container — the
debt an unfinished apply leaves (diff.NodeDiff.owed). So the rollout runs it as it runs any change:
in the batches of the app's strategy, drained at the ingress, health-gated, halting past the failure
budget, locked, and journaled."""

from __future__ import annotations

from collections.abc import Callable

from .. import kinds
from ..apptypes import app_type
from ..errors import FunopsError
from ..ids import Handler
from ..load.project import Project
from ..load.targets import select_apps
from ..plan.planner import Intent, Plan, make_plan
from ..plan.program import make_program
from ..plan.schedule import schedule
from ..transports import Transport


def plan_restart(
    project: Project, app_name: str, connect: Callable[[str], Transport], nodes: list[str] | None = None
) -> Plan:
    (app,) = select_apps(project.apps, [app_name])
    kind = app_type(project.apps[app])
    if not kind.runs or kind.unroutable:  # a proxy runs nothing; a job runs on a timer and is done
        raise FunopsError(f"app {app} is {kind.article} {kind.name}: no long-running instance to restart")
    plan = make_plan(project, nodes, connect, Intent(apps={app}))
    pending = [f"{n.name}: {c.id}" for n in plan.doc.nodes for c in n.changes]
    if pending:
        raise FunopsError(
            f"{app} has changes pending ({', '.join(pending[:5])}{', …' if len(pending) > 5 else ''}): "
            f"restart restarts what runs. Deploy them with `funops apply --app {app}`."
        )
    restarted = 0
    for doc in plan.doc.nodes:
        g, nd = plan.gathered[doc.name], plan.desired.nodes[doc.name]
        if g.facts is None or app not in nd.apps or app not in g.facts.node_state.apps:
            continue  # unreachable (reported), or the app is not there (yet)
        owed = [h for r in nd.resources if kinds.app_of_handler(h := Handler.restart(r.kind, r.name)) == app]
        plan.diffs[doc.name].owed += owed
        doc.owed += owed
        plan.doc.summary.owed += len(owed)
        plan.doc.summary.nodes_changed += 1
        restarted += 1
    if not restarted:
        raise FunopsError(f"app {app} runs on no reachable node yet: nothing to restart")
    plan.program = make_program(plan)  # the program apply runs: now with the restarts owed
    plan.doc.schedule = schedule(plan)
    return plan
