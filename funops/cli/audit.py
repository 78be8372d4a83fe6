"""`funops audit`: who ran what, when, with what result, from the journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import RepoOpt, TextJsonOpt, load_inventory
from .output import EXIT_OK, Output, console, reported

FORMAT_VERSION = 1


def audit(
    repo: RepoOpt = Path("."),
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this long ago (30m, 2h, 7d) or UTC time (2026-11-25T08:00)."),
    ] = None,
    output: TextJsonOpt = Output.text,
) -> None:
    """The journal as an audit trail: who ran apply, rollback, drift --fix, restart, exec or lock
    release, when, what it did and its result (per node in -o json). Touches no node."""
    from rich.markup import escape

    from ..apply import journal
    from ..apply.audit import rows, since_cutoff

    project = load_inventory(repo, None)
    with reported():
        cutoff = since_cutoff(since) if since else None
    path = journal.journal_path(project.root, project.settings.journal)
    found = rows(journal.entries(path), cutoff)
    if output is Output.json:
        doc = {"formatVersion": FORMAT_VERSION, "journal": str(path), "entries": [r.to_json() for r in found]}
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(EXIT_OK)
    # One line per run, as `git log --oneline` (a table would wrap its commands at 80 columns).
    con = console()
    for r in found:
        color = (
            "green" if r.result == "ok" else "red" if r.result.startswith(("failed", "error")) else "yellow"
        )
        nodes = " ".join(f"{n}:{s}" for n, s in sorted(r.nodes.items()))
        con.print(
            f"{escape(r.when)}  {escape(r.who)}  {escape(r.what)}  "
            f"[{color}]{escape(r.result)}[/]  [dim]{escape(nodes)}[/]"
        )
    if not found:
        con.print("[dim]The journal has no entries" + (" since then" if since else "") + ".[/]")
    raise typer.Exit(EXIT_OK)
