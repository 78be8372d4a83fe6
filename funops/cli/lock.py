"""`funops lock status|release`: see each node's apply lock, and release one whose apply is dead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import InventoryOpt, NodeOpt, RepoOpt, TextJsonOpt, load_inventory
from .output import EXIT_OK, EXIT_UNREACHABLE, Output, console, fail, reported

FORMAT_VERSION = 1

lock_app = typer.Typer(help="The nodes' apply locks: who holds them, and releasing a dead apply's.")


@lock_app.command("status")
def status(
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    output: TextJsonOpt = Output.text,
) -> None:
    """Each node's apply lock: free, held (holder, age, expiry) or stale (expired, or its holder a
    dead process of this host: the next apply breaks it). Exit 0; 4 when a node is unreachable."""
    from rich.markup import escape
    from rich.table import Table

    from ..load.targets import select_nodes
    from ..nodes.locks import lock_statuses
    from ..transports import Connections

    project = load_inventory(repo, inventory)
    with reported():
        names = select_nodes(project.nodes, node)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        rows = lock_statuses(project, names, connections)
    finally:
        connections.close()
    if output is Output.json:
        doc = {"formatVersion": FORMAT_VERSION, "nodes": [r.to_json() for r in rows]}
        typer.echo(json.dumps(doc, indent=2))
    else:
        table = Table("node", "lock", "holder", "pid", "age", "expires in")
        for r in rows:
            table.add_row(
                r.node, r.state(), escape(r.holder or "-"), "-" if r.pid is None else str(r.pid),
                _secs(r.age_seconds), _secs(r.expires_in_seconds),
            )  # fmt: skip
        console().print(table)
        for r in rows:
            if r.error:
                console().print(f"[red]{escape(r.node)}:[/] {escape(r.error)}")
    raise typer.Exit(EXIT_OK if all(r.reachable for r in rows) else EXIT_UNREACHABLE)


@lock_app.command("release")
def release(
    node: Annotated[str, typer.Argument(metavar="NODE", help="The node whose lock to remove.")],
    repo: RepoOpt = Path("."),
    inventory: InventoryOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Release a lock whose holder may still be running.")
    ] = False,
) -> None:
    """Remove NODE's apply lock. Refused while the lock is fresh (unexpired, its holder not known
    dead) unless --force. Recorded in the journal."""
    from ..apply import journal
    from ..apply.rollout import who
    from ..load.targets import select_nodes
    from ..nodes.locks import release as release_lock
    from ..transports import Connections

    project = load_inventory(repo, inventory)
    with reported():
        matched = select_nodes(project.nodes, [node])
    if len(matched) != 1:
        fail(f"lock release takes one node; {node!r} matches {', '.join(matched)}")
    name = matched[0]
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            before = release_lock(project, name, connections, force)
    finally:
        connections.close()
    entry = {
        "event": "lock-release",
        "who": who(),
        "when": journal.now(),
        "project": project.settings.project,
        "nodes": {
            name: {"status": "released", "holder": before.holder, "pid": before.pid, "fresh": before.fresh}
        },
        "forced": force,
        "exitCode": EXIT_OK,
    }
    journal.append(journal.journal_path(project.root, project.settings.journal), entry)
    console().print(f"released the lock of {name} (was {before.holder}, pid {before.pid})")


def _secs(value: int | None) -> str:
    return "-" if value is None else f"{value}s"
