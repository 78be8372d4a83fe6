"""`funops cordon NODE` / `uncordon NODE`: edit the inventory in the repo, then say to commit;
`funops drain NODE`; `funops nodes`: what every node is and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import InventoryOpt, RepoOpt, TextJsonOpt, load_inventory, show_plan
from .output import EXIT_OK, EXIT_UNREACHABLE, Output, console, fail, reported

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="The node, by its inventory name.")]


def cordon(node: NodeArg, repo: RepoOpt = Path(".")) -> None:
    """Mark NODE cordoned in the inventory: no new placements; what runs there keeps running."""
    _set(repo, node, True)


def uncordon(node: NodeArg, repo: RepoOpt = Path(".")) -> None:
    """Clear NODE's cordon in the inventory: placement may use it again."""
    _set(repo, node, False)


def _set(repo: Path, node: str, cordoned: bool) -> None:
    from ..nodes.cordon import set_cordoned

    with reported():
        edit = set_cordoned(repo.resolve(), node, cordoned)
    word = "cordoned" if cordoned else "uncordoned"
    where = edit.file.relative_to(repo.resolve()) if edit.file.is_relative_to(repo.resolve()) else edit.file
    if not edit.changed:
        console().print(f"{node} is already {word} in {where}; nothing changed.")
        return
    console().print(
        f"{node} {word} in {where}. Commit this (git commit {where}), then plan and apply: "
        "the repo is what funops deploys."
    )


AutoApprove = Annotated[bool, typer.Option("--auto-approve", help="Do not ask (CI).")]


def drain(
    node: NodeArg,
    repo: RepoOpt = Path("."),
    output: Annotated[str, typer.Option("--output", "-o", help="text or json")] = "text",
    auto_approve: AutoApprove = False,
) -> None:
    """Move NODE's `replicas` apps to other nodes (placement picks where, NODE counts as cordoned):
    one plan, printed, then applied through the normal batches — the new instances start and are
    healthy, the ingress routes to them, then NODE's are removed. Cordon NODE in the repo too
    (`funops cordon`), or the next apply may place apps there again."""
    from ..load.loader import load_project
    from ..plan.planner import make_plan
    from ..transports import Connections
    from .converge import confirm_and_run

    with reported():
        project = load_project(repo.resolve())
    if node not in project.nodes:
        fail(f"unknown node {node}")
    project.nodes[node] = project.nodes[node].model_copy(update={"cordoned": True})
    out = Output(output)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            plan = make_plan(project, None, connections, drain=node)
        show_plan(plan.doc, out, for_apply=True)
        code = confirm_and_run(
            plan, connections, out, auto_approve=auto_approve, parallel=None, skip_unreachable=False,
            question=f"Drain {node} with these changes?",
        )  # fmt: skip
        raise typer.Exit(code)
    finally:
        connections.close()


def nodes(
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    output: TextJsonOpt = Output.text,
) -> None:
    """Every node: address, transport, reachable, agent version, capabilities, free disk, containers,
    cordoned, the revision its apps were last applied from, the host key or certificate verified.
    Exit 0; 4 when some node is unreachable."""
    import json

    from rich.markup import escape
    from rich.table import Table

    from ..nodes.status import node_statuses
    from ..transports import Connections

    project = load_inventory(repo, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        rows = node_statuses(project, connections)
    finally:
        connections.close()
    if output is Output.json:
        typer.echo(json.dumps({"formatVersion": 1, "nodes": [r.to_json() for r in rows]}, indent=2))
    else:
        # Narrow enough for 80 columns: the JSON has the capabilities and whole fingerprints.
        table = Table("node", "address", "via", "up", "agent", "disk", "ctrs", "cordon", "revision", "key")
        for column in table.columns[:2]:  # a name or an address cut short is no use: the others give way
            column.no_wrap, column.min_width = True, None
        for r in rows:
            table.add_row(
                r.name, r.address, r.transport, "[green]yes[/]" if r.reachable else "[red]no[/]",
                r.agent or "-", "-" if r.disk_free_pct is None else f"{r.disk_free_pct:g}%",
                "-" if r.containers is None else str(r.containers), "yes" if r.cordoned else "-",
                ",".join(r.revisions) or "-", (r.fingerprint or "-")[:14],
            )  # fmt: skip
        console().print(table)
        for r in rows:
            if r.error:
                console().print(f"[red]{r.name}:[/] {escape(r.error)}")
    raise typer.Exit(EXIT_OK if all(r.reachable for r in rows) else EXIT_UNREACHABLE)
