"""`funops restart APP`: restart an app's instances without a manifest change, rolling and drained."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .options import AutoApproveOpt, InventoryOpt, NodeOpt, ParallelOpt, RepoOpt, TextJsonOpt, load
from .output import EXIT_OK, Output, console, fail, reported


def restart(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application to restart.")],
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
    auto_approve: AutoApproveOpt = False,
    parallel: ParallelOpt = None,
) -> None:
    """Restart APP's unit or container on each of its nodes, as apply rolls out a change: in the
    batches of its strategy, drained at the ingress first, health-gated, halting past maxFailures.
    Refused while APP has changes pending (apply them) and on pull-mode nodes. Journaled.
    Exit codes as apply."""
    from rich.markup import escape

    from ..apply.restart import plan_restart
    from ..transports import Connections
    from .converge import run_rollout
    from .progress import Progress

    project = load(repo, None, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            plan = plan_restart(project, app_name, connections, node)
        pulled = sorted(n.name for n in plan.doc.nodes if n.owed and project.nodes[n.name].pull)
        if pulled:
            fail(f"{', '.join(pulled)}: in pull mode: they take no pushed restart (leave them out: --node)")
        con = console(stderr=output is Output.json)
        sched = plan.doc.schedule
        if sched is not None:
            batches = " | ".join(", ".join(b) for b in sched.batches)
            con.print(
                f"[bold]Restart[/] {escape(app_name)} in {len(sched.batches)} batch(es): {escape(batches)} "
                f"(each drained at the ingress first; halt after {sched.max_failures + 1} failed node(s))"
            )
        if not auto_approve:
            if not sys.stdin.isatty():
                fail("refusing to restart without a terminal to confirm: pass --auto-approve (CI)")
            if not typer.confirm(f"Restart {app_name}?", default=False):
                con.print("Cancelled; nothing was changed.")
                raise typer.Exit(EXIT_OK)
        progress = Progress(con, json_events=output is Output.json)
        _, code = run_rollout(plan, connections, progress, parallel, trigger=f"restart {app_name}")
        raise typer.Exit(code)
    finally:
        connections.close()
