"""`funops details`: one table of every app on every node (version, release, canary share, state, uptime)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .options import InventoryOpt, NodeOpt, RepoOpt, RevisionOpt, TextJsonOpt, load
from .output import EXIT_OK, EXIT_UNREACHABLE, Output, console, reported
from .targeting import AppOpt

FORMAT_VERSION = 1


def details(
    repo: RepoOpt = Path("."),
    revision: RevisionOpt = None,
    inventory: InventoryOpt = None,
    node: NodeOpt = None,
    app: AppOpt = None,
    output: TextJsonOpt = Output.text,
) -> None:
    """Every app on every node: the version running (and the one wanted, when they differ), its
    release, its share of the app's traffic (canary split), its unit's or container's state and
    uptime. One round trip per node; changes nothing. Exit 0; 4 when a node is unreachable."""
    from rich.markup import escape
    from rich.table import Table

    from ..load.targets import select_apps
    from ..nodes.details import details as app_details
    from ..transports import Connections

    project = load(repo, revision, inventory)
    connections = Connections(project.nodes, project.settings, project.root)
    try:
        with reported():
            apps = select_apps(project.apps, app) if app else None
            rows = app_details(project, connections, node, apps)
    finally:
        connections.close()
    unreachable = any(r.state == "unreachable" for r in rows)
    if output is Output.json:
        typer.echo(
            json.dumps({"formatVersion": FORMAT_VERSION, "apps": [r.to_json() for r in rows]}, indent=2)
        )
        raise typer.Exit(EXIT_UNREACHABLE if unreachable else EXIT_OK)
    table = Table("app", "node", "version", "release", "share", "state", "up")
    for r in rows:
        version = r.version or "-"
        if r.wanted and r.wanted != r.version:
            version += f" → {r.wanted}"
        color = "green" if r.state in ("active", "running") else "red"
        table.add_row(
            escape(r.app), escape(r.node), escape(version) + (" [yellow]*[/]" if r.pending else ""),
            escape(r.release or "-"), "-" if r.share is None else f"{r.share:g}%",
            f"[{color}]{escape(r.state)}[/]", _duration(r.uptime_seconds),
        )  # fmt: skip
    console().print(table)
    if any(r.pending for r in rows):
        console().print("[yellow]*[/] changes pending: see `funops plan`")
    raise typer.Exit(EXIT_UNREACHABLE if unreachable else EXIT_OK)


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
